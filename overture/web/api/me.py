"""The caller: who they are and which tenants they can enter."""

from __future__ import annotations

from typing import Any

from overture.tenants.access import reachable_tenants
from overture.web.api import api
from overture.web.api.schemas import MeOut, TenantOut, fields_of
from overture.web.auth import authenticated, current_access, current_principal


@api.get("/me")
@authenticated
@api.output(MeOut)
@api.doc(tags=["Me"], summary="The current user and the tenants they can enter")
def get_me() -> dict[str, Any]:
    principal = current_principal()
    if principal.api_key is not None:
        access = current_access()
        tenants = [(access.tenant, access.role)] if access.tenant else []
    else:
        tenants = reachable_tenants(principal.user)
    return {
        "user": principal.user,
        "auth": "api_key" if principal.api_key else "session",
        "tenants": [fields_of(t, TenantOut, role=str(role)) for t, role in tenants],
    }
