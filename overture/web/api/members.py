"""Members of the tenant this request acts in."""

from __future__ import annotations

from typing import Any

from overture.platform.db import db
from overture.tenants import members
from overture.tenants.invitations_models import Invitation
from overture.tenants.models import Membership
from overture.web.api import api
from overture.web.api.invitation_schemas import InvitationOut
from overture.web.api.invitations import invites_sent
from overture.web.api.schemas import MemberInvite, MemberOut, MemberPage, MemberUpdate, PageQuery
from overture.web.auth import current_access, require

TAGS = ["Members"]


@api.get("/members")
@require("member.read")
@api.input(PageQuery, location="query", arg_name="query")
@api.output(MemberPage)
@api.doc(tags=TAGS, summary="List members")
def list_members(query: dict[str, Any]) -> dict[str, Any]:
    page = members.list_members(current_access(), query["cursor"], query["limit"])
    return page.body()


@api.post("/members")
@require("member.manage")
@invites_sent
@api.input(MemberInvite, arg_name="body")
@api.output(InvitationOut, status_code=202)
@api.doc(tags=TAGS, summary="Invite a person by email",
         description="Emails an invitation; the person becomes a member only by accepting "
                     "it. The answer is the pending invitation, the same for every address. "
                     "Inviting an address already invited sends the invitation again.")
def invite_member(body: dict[str, Any]) -> Invitation:
    invitation = members.invite(current_access(), body["email"], body["role"], body["name"])
    db.session.commit()
    return invitation


@api.get("/members/<member_id>")
@require("member.read")
@api.output(MemberOut)
@api.doc(tags=TAGS, summary="One member")
def get_member(member_id: str) -> Membership:
    return members.get_member(current_access(), member_id)


@api.patch("/members/<member_id>")
@require("member.manage")
@api.input(MemberUpdate, arg_name="body")
@api.output(MemberOut)
@api.doc(tags=TAGS, summary="Change a member's role")
def update_member(member_id: str, body: dict[str, Any]) -> Membership:
    access = current_access()
    membership = members.change_role(access, members.get_member(access, member_id), body["role"])
    db.session.commit()
    return membership


@api.delete("/members/<member_id>")
@require("member.manage")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Remove a member (never the last owner)")
def remove_member(member_id: str) -> tuple[str, int]:
    access = current_access()
    members.remove(access, members.get_member(access, member_id))
    db.session.commit()
    return "", 204
