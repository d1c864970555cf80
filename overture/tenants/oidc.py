"""OpenID Connect, the relying party: discovery, the authorization request (code flow
with PKCE S256, state and nonce), the code exchange and the ID token checks.

Every request goes through the one outbound client (`platform.http`): discovery and
the JWKS with `http.request`, the token request with Authlib's client on
`http.transport()`. The ID token is checked with joserfc (what Authlib itself uses):
signature by the provider's JWKS (asymmetric algorithms only: never `none`, never an
HMAC keyed with a secret the provider's metadata could choose), then iss, aud (and azp),
exp, iat and the nonce this browser's session holds.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from overture.platform import http
from overture.platform.errors import OvertureError, ValidationFailed
from overture.tenants.sso import Login, check_url

TIMEOUT = 10.0
SCOPE = "openid email profile"
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                      "ES384", "ES512", "EdDSA")
LEEWAY = 60  # seconds of clock difference tolerated on exp and iat
MAX_AGE = 600  # an ID token issued longer ago than this is not for this sign-in
UNAVAILABLE = frozenset({"server_error", "temporarily_unavailable"})


class ProviderError(OvertureError):
    """The identity provider could not be reached, or answered something unusable."""

    status = 502
    code = "sso-provider-error"
    title = "The identity provider did not answer properly"


class InvalidIdToken(OvertureError):
    status = 401
    code = "sso-invalid-token"
    title = "The identity provider's answer did not check out"


@dataclass(frozen=True)
class Metadata:
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_auth_method: str


@dataclass(frozen=True)
class Pending:
    """What the browser's session keeps between start and callback."""

    state: str
    nonce: str
    code_verifier: str


def _get_json(url: str, what: str) -> dict[str, Any]:
    try:
        response = http.request("GET", url, headers={"Accept": "application/json"},
                                timeout=TIMEOUT)
    except http.BlockedDestination as exc:
        raise ProviderError(f"the {what} is at a destination not allowed: {exc.detail}") \
            from exc
    except http.HTTPError as exc:
        raise ProviderError(f"cannot reach the identity provider's {what}") from exc
    if response.status_code != 200:
        raise ProviderError(f"the identity provider's {what} answered "
                            f"{response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderError(f"the identity provider's {what} is not JSON") from exc
    if not isinstance(body, dict):
        raise ProviderError(f"the identity provider's {what} is not a JSON object")
    return body


def _endpoint(doc: dict[str, Any], name: str) -> str:
    try:
        return check_url(str(doc.get(name) or ""), name)
    except ValidationFailed as exc:
        raise ProviderError(f"the provider's {name} is not usable: {exc.detail}") from exc


def discover(issuer: str) -> Metadata:
    """The provider's metadata, whose `issuer` must be exactly the configured one
    (OpenID Connect Discovery 1.0, section 4.3)."""
    doc = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration",
                    "discovery document")
    if doc.get("issuer") != issuer:
        raise ProviderError("the discovery document names another issuer")
    methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    method = next((m for m in ("client_secret_basic", "client_secret_post")
                   if isinstance(methods, list) and m in methods), None)
    if method is None:
        raise ProviderError("the provider supports neither client_secret_basic nor "
                            "client_secret_post at its token endpoint")
    challenges = doc.get("code_challenge_methods_supported")
    if isinstance(challenges, list) and "S256" not in challenges:
        raise ProviderError("the provider does not support PKCE with S256")
    return Metadata(_endpoint(doc, "authorization_endpoint"),
                    _endpoint(doc, "token_endpoint"), _endpoint(doc, "jwks_uri"), method)


def _client(login: Login, metadata: Metadata, redirect_uri: str) -> OAuth2Client:
    return OAuth2Client(client_id=login.client_id, client_secret=login.client_secret,
                        scope=SCOPE, redirect_uri=redirect_uri,
                        token_endpoint_auth_method=metadata.token_auth_method,
                        code_challenge_method="S256", timeout=TIMEOUT,
                        follow_redirects=False, transport=http.transport(), trust_env=False)


def authorization_request(login: Login, redirect_uri: str) -> tuple[str, Pending]:
    """Where to send the browser, and what its session must remember."""
    metadata = discover(login.issuer)
    pending = Pending(secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                      secrets.token_urlsafe(64))
    with _client(login, metadata, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            metadata.authorization_endpoint, state=pending.state, nonce=pending.nonce,
            code_verifier=pending.code_verifier)
    return url, pending


def exchange(login: Login, code: str, redirect_uri: str, pending: Pending) -> dict[str, Any]:
    """Trade the code for tokens and return the checked ID token's claims."""
    metadata = discover(login.issuer)
    try:
        with _client(login, metadata, redirect_uri) as client:
            token = client.fetch_token(metadata.token_endpoint, code=code,
                                       grant_type="authorization_code",
                                       code_verifier=pending.code_verifier)
    except http.BlockedDestination as exc:
        raise ProviderError(f"the token endpoint is not allowed: {exc.detail}") from exc
    except http.HTTPError as exc:
        raise ProviderError("cannot reach the identity provider's token endpoint") from exc
    except AuthlibBaseError as exc:
        if exc.error in UNAVAILABLE:
            raise ProviderError(f"the identity provider is unavailable ({exc.error})") from exc
        raise InvalidIdToken(f"the identity provider refused the code: {exc.error}") from exc
    except ValueError as exc:  # not JSON: a proxy's error page, a crashed server
        raise ProviderError("the identity provider's token endpoint answered something "
                            "that is not a token") from exc
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise InvalidIdToken("the identity provider sent no ID token")
    return validate_id_token(id_token, login, metadata, pending.nonce)


def validate_id_token(id_token: str, login: Login, metadata: Metadata,
                      nonce: str) -> dict[str, Any]:
    try:
        keys = KeySet.import_key_set(_get_json(metadata.jwks_uri, "key set"))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ProviderError("the identity provider's key set is not usable") from exc
    try:
        claims = jwt.decode(id_token, keys, algorithms=list(SIGNING_ALGORITHMS)).claims
        jwt.JWTClaimsRegistry(
            leeway=LEEWAY, iss={"essential": True, "value": login.issuer},
            sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
        ).validate(claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidIdToken(f"the ID token is not valid: {exc}") from exc
    _check_audience(claims, login.client_id)
    if claims["iat"] < time.time() - MAX_AGE - LEEWAY:
        raise InvalidIdToken("the ID token is too old for this sign-in")
    if not isinstance(claims.get("nonce"), str) \
            or not hmac.compare_digest(claims["nonce"], nonce):
        raise InvalidIdToken("the ID token was not issued for this sign-in (nonce)")
    if not isinstance(claims.get("sub"), str) or not claims["sub"] \
            or len(claims["sub"]) > 255:
        raise InvalidIdToken("the ID token names no usable subject")
    return claims


def _check_audience(claims: dict[str, Any], client_id: str) -> None:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:
        raise InvalidIdToken("the ID token is meant for another client")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise InvalidIdToken("the ID token names another authorized party")
