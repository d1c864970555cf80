"""Invitations to the tenant this request acts in: list, re-send, withdraw.

Inviting is `POST /members` (overture/web/api/members.py); it answers with the
invitation, the same way for every address.
"""

from __future__ import annotations

from typing import Any

from overture.platform.db import db
from overture.tenants import invitations
from overture.tenants.invitations_models import Invitation
from overture.web.api import api
from overture.web.api.invitation_schemas import InvitationOut, InvitationPage, InvitationQuery
from overture.web.auth import current_access, current_principal, require
from overture.web.extensions import limiter

TAGS = ["Members"]
# Each invitation sends an email to an address the caller chooses: a member manager
# cannot turn the platform into a mail cannon. Per person, API keys included.
INVITES_PER_USER = "30 per hour"


def _inviter() -> str:
    return f"inviter:{current_principal().user.id}"


invites_sent = limiter.shared_limit(INVITES_PER_USER, scope="invitation-mail",
                                    key_func=_inviter, override_defaults=False)


@api.get("/invitations")
@require("member.read")
@api.input(InvitationQuery, location="query", arg_name="query")
@api.output(InvitationPage)
@api.doc(tags=TAGS, summary="List invitations (pending unless `status` says otherwise)")
def list_invitations(query: dict[str, Any]) -> dict[str, Any]:
    page = invitations.list_invitations(current_access(), query["cursor"], query["limit"],
                                        query["status"])
    return page.body()


@api.get("/invitations/<invitation_id>")
@require("member.read")
@api.output(InvitationOut)
@api.doc(tags=TAGS, summary="One invitation")
def get_invitation(invitation_id: str) -> Invitation:
    return invitations.get_invitation(current_access(), invitation_id)


@api.post("/invitations/<invitation_id>/resend")
@require("member.manage")
@invites_sent
@api.output(InvitationOut)
@api.doc(tags=TAGS, summary="Email the invitation again; the previous link stops working")
def resend_invitation(invitation_id: str) -> Invitation:
    access = current_access()
    invitation = invitations.resend(access, invitations.get_invitation(access, invitation_id))
    db.session.commit()
    return invitation


@api.delete("/invitations/<invitation_id>")
@require("member.manage")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Withdraw a pending invitation; its link stops working")
def revoke_invitation(invitation_id: str) -> tuple[str, int]:
    access = current_access()
    invitations.revoke(access, invitations.get_invitation(access, invitation_id))
    db.session.commit()
    return "", 204
