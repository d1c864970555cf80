"""Credentials of the tenant this request acts in. No response ever holds a secret:
every read is masked, and values leave the vault only through `vault.use_credential`
inside the process that makes the call."""

from __future__ import annotations

from typing import Any

from overture.platform.db import db
from overture.tenants import credentials
from overture.tenants.vault_models import Credential
from overture.web.api import api
from overture.web.api.schemas import (
    CredentialCreate,
    CredentialOut,
    CredentialPage,
    CredentialQuery,
    CredentialUpdate,
)
from overture.web.auth import current_access, require

TAGS = ["Credentials"]


@api.get("/credentials")
@require("credential.read")
@api.input(CredentialQuery, location="query", arg_name="query")
@api.output(CredentialPage)
@api.doc(tags=TAGS, summary="List credentials (masked)")
def list_credentials(query: dict[str, Any]) -> dict[str, Any]:
    page = credentials.list_credentials(current_access(), query["cursor"], query["limit"],
                                        kind=query["kind"], connector_key=query["connector_key"])
    return page.body()


@api.post("/credentials")
@require("credential.manage")
@api.input(CredentialCreate, arg_name="body")
@api.output(CredentialOut, status_code=201)
@api.doc(tags=TAGS, summary="Create a credential; its secret fields are sealed at once")
def create_credential(body: dict[str, Any]) -> Credential:
    credential = credentials.create(current_access(), name=body["name"], kind=body["kind"],
                                    fields=body["fields"], connector_key=body["connector_key"],
                                    secret_fields=body["secret_fields"])
    db.session.commit()
    return credential


@api.get("/credentials/<credential_id>")
@require("credential.read")
@api.output(CredentialOut)
@api.doc(tags=TAGS, summary="One credential (masked)")
def get_credential(credential_id: str) -> Credential:
    return credentials.get_credential(current_access(), credential_id)


@api.patch("/credentials/<credential_id>")
@require("credential.manage")
@api.input(CredentialUpdate, arg_name="body")
@api.output(CredentialOut)
@api.doc(tags=TAGS, summary="Update a credential; send `********` to keep a stored secret")
def update_credential(credential_id: str, body: dict[str, Any]) -> Credential:
    extra = {"connector_key": body["connector_key"]} if "connector_key" in body else {}
    credential = credentials.update(current_access(), credential_id, name=body.get("name"),
                                    fields=body["fields"], secret_fields=body["secret_fields"],
                                    **extra)
    db.session.commit()
    return credential


@api.delete("/credentials/<credential_id>")
@require("credential.manage")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Delete a credential")
def delete_credential(credential_id: str) -> tuple[str, int]:
    credentials.delete(current_access(), credential_id)
    db.session.commit()
    return "", 204
