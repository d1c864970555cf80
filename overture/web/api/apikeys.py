"""API keys of the tenant this request acts in."""

from __future__ import annotations

from typing import Any

from overture.platform.db import db
from overture.tenants import apikeys
from overture.tenants.models import ApiKey
from overture.web.api import api
from overture.web.api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ApiKeyPage,
    PageQuery,
    fields_of,
)
from overture.web.auth import current_access, require

TAGS = ["API keys"]


@api.get("/api-keys")
@require("apikey.read")
@api.input(PageQuery, location="query", arg_name="query")
@api.output(ApiKeyPage)
@api.doc(tags=TAGS, summary="List API keys (never their secrets)")
def list_keys(query: dict[str, Any]) -> dict[str, Any]:
    page = apikeys.list_keys(current_access(), query["cursor"], query["limit"])
    return page.body()


@api.post("/api-keys")
@require("apikey.manage")
@api.input(ApiKeyCreate, arg_name="body")
@api.output(ApiKeyCreated, status_code=201)
@api.doc(tags=TAGS, summary="Create an API key; the token is in this response only")
def create_key(body: dict[str, Any]) -> dict[str, Any]:
    key, token = apikeys.create_key(current_access(), body["name"], body["scopes"],
                                    body["expires_at"])
    db.session.commit()
    return fields_of(key, ApiKeyOut, token=token)


@api.get("/api-keys/<key_id>")
@require("apikey.read")
@api.output(ApiKeyOut)
@api.doc(tags=TAGS, summary="One API key")
def get_key(key_id: str) -> ApiKey:
    return apikeys.get_key(current_access(), key_id)


@api.delete("/api-keys/<key_id>")
@require("apikey.manage")
@api.output(ApiKeyOut)
@api.doc(tags=TAGS, summary="Revoke an API key; it is refused from the next request on")
def revoke_key(key_id: str) -> ApiKey:
    access = current_access()
    key = apikeys.revoke(access, apikeys.get_key(access, key_id))
    db.session.commit()
    return key
