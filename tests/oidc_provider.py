"""A real, local OpenID Connect provider for the SSO tests, built on Authlib's
authorization server and served by werkzeug on 127.0.0.1 in a thread.

It publishes discovery and a JWKS, auto-approves `user` (no login screen) at its
authorization endpoint, and at its token endpoint authenticates the client
(client_secret_basic or client_secret_post), enforces PKCE (S256, required) and signs
RS256 ID tokens carrying the nonce. `overrides` is merged into the next ID tokens'
claims, `discovery_overrides` into its metadata, and `published_key` replaces the
key its JWKS shows, for tests that need a provider misbehaving.

    with OidcProvider(redirect_uri="http://localhost/sso/callback") as provider:
        provider.issuer, provider.client_id, provider.client_secret
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server


class _Client:
    """One registered confidential client."""

    def __init__(self, client_id: str, secret: str, redirect_uri: str) -> None:
        self.client_id, self.secret, self.redirect_uri = client_id, secret, redirect_uri

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"openid", "email", "profile"}
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret or "", self.secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in {"client_secret_basic", "client_secret_post"}

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


class _Code:
    def __init__(self, code: str, client_id: str, redirect_uri: str, scope: str, nonce: str,
                 challenge: str, method: str, user: dict[str, Any]) -> None:
        self.code, self.client_id, self.redirect_uri, self.scope = code, client_id, \
            redirect_uri, scope
        self.nonce, self.code_challenge, self.code_challenge_method = nonce, challenge, method
        self.user, self.auth_time = user, int(time.time())

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class OidcProvider:
    def __init__(self, redirect_uri: str, user: dict[str, Any] | None = None,
                 auth_methods: tuple[str, ...] = ("client_secret_basic",
                                                  "client_secret_post")) -> None:
        self.client_id = f"overture-{secrets.token_hex(4)}"
        self.client_secret = secrets.token_urlsafe(24)
        self.client = _Client(self.client_id, self.client_secret, redirect_uri)
        self.user: dict[str, Any] = user or {}
        self.overrides: dict[str, Any] = {}
        self.auth_methods = auth_methods
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"})
        self.published_key = self.key  # what the JWKS shows: another key breaks signatures
        self.discovery_overrides: dict[str, Any] = {}
        self.codes: dict[str, _Code] = {}
        self.token_requests: list[dict[str, Any]] = []
        self._server = make_server("127.0.0.1", 0, self._app(), threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OidcProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ----------------------------------------------------------------- the server

    def _app(self) -> Flask:
        app = Flask("oidc-provider")
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": 300}
        provider = self
        server = AuthorizationServer(app, query_client=self._query_client,
                                     save_token=lambda token, request: None)

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = list(provider.auth_methods)

            def save_authorization_code(self, code: str, request: Any) -> None:
                data = request.payload.data
                provider.codes[code] = _Code(
                    code, request.client.client_id, request.payload.redirect_uri,
                    request.payload.scope, data.get("nonce", ""), data.get("code_challenge"),
                    data.get("code_challenge_method"), dict(provider.user))

            def query_authorization_code(self, code: str, client: Any) -> _Code | None:
                found = provider.codes.get(code)
                return found if found is not None and found.client_id == client.client_id \
                    else None

            def delete_authorization_code(self, authorization_code: _Code) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: _Code) -> dict[str, Any]:
                return authorization_code.user

        class Pkce(CodeChallenge):
            def get_authorization_code_challenge(self, authorization_code: _Code) -> str:
                return authorization_code.code_challenge

            def get_authorization_code_challenge_method(self, authorization_code: _Code
                                                        ) -> str:
                return authorization_code.code_challenge_method

        class OpenId(OpenIDCode):
            def exists_nonce(self, nonce: str, request: Any) -> bool:
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client: Any) -> RSAKey:
                return provider.key

            def get_client_algorithm(self, client: Any) -> str:
                return "RS256"

            def get_client_claims(self, client: Any) -> dict[str, Any]:
                return {"iss": provider.issuer, "aud": [client.get_client_id()]}

            def get_encode_header(self, client: Any) -> dict[str, Any]:
                return {"alg": "RS256", "kid": "test-key"}

            def generate_user_info(self, user: dict[str, Any], scope: str) -> dict[str, Any]:
                return {**user, **provider.overrides}

        server.register_grant(CodeGrant, [Pkce(required=True), OpenId(require_nonce=True)])

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            return jsonify({
                "issuer": provider.issuer,
                "authorization_endpoint": f"{provider.issuer}/authorize",
                "token_endpoint": f"{provider.issuer}/token",
                "jwks_uri": f"{provider.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": list(provider.auth_methods),
                "code_challenge_methods_supported": ["S256"],
                **provider.discovery_overrides,
            })

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify({"keys": [provider.published_key.as_dict(private=False)]})

        @app.get("/authorize")
        def authorize() -> Any:
            # No login screen: the configured test user approves at once.
            try:
                grant = server.get_consent_grant(end_user=provider.user)
            except OAuth2Error as error:
                return server.handle_error_response(None, error)
            return server.create_authorization_response(grant_user=provider.user, grant=grant)

        @app.post("/token")
        def token() -> Any:
            from flask import request

            provider.token_requests.append({"form": dict(request.form),
                                            "basic": request.authorization is not None})
            return server.create_token_response()

        return app

    def _query_client(self, client_id: str) -> _Client | None:
        return self.client if client_id == self.client_id else None
