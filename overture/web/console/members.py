"""Members of the workspace in use: who they are, their roles, pending invitations;
invite, change a role, remove. The services check `member.manage` themselves too."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.platform.db import db
from overture.tenants import invitations, members
from overture.tenants.roles import RANK, Role
from overture.web.console import bp
from overture.web.console.context import console_access, page, render
from overture.web.console.forms import FormErrors, form_errors, status_of

ROLE_HELP = {
    Role.OWNER: "everything, including billing and making owners",
    Role.ADMIN: "everything but billing: people, keys, workspaces, audit",
    Role.BUILDER: "builds workflows, agents and connections; runs them",
    Role.OPERATOR: "runs workflows, decides approvals, watches runs",
    Role.AUDITOR: "reads everything and the audit log; changes nothing",
    Role.VIEWER: "reads workflows and runs; changes nothing",
    Role.MEMBER: "uses the branded portal only",
}


def _pending_invitations() -> list[Any]:
    return invitations.list_invitations(console_access(), None, 200).items


def _grantable() -> list[Role]:
    access = console_access()
    mine = access.role
    strong = mine == Role.OWNER or access.principal.user.is_platform_admin
    return [r for r in RANK if r != Role.OWNER or strong]


def _page(errors: FormErrors | None = None, form: dict[str, str] | None = None) -> Any:
    access = console_access()
    rows = members.list_members(access, None, 200).items
    rows.sort(key=lambda m: (RANK.index(Role(m.role)) if m.role in set(Role) else 99,
                             (m.user.name or m.user.email).lower()))
    return render("console/members.html", status_of(errors or FormErrors()), title="Members",
                  rows=rows, invitations=_pending_invitations(),
                  can_manage=access.can("member.manage"), roles=_grantable(),
                  role_help=ROLE_HELP, errors=errors or FormErrors(),
                  form=form or {"email": "", "role": Role.VIEWER.value},
                  me=access.principal.user.id)


@bp.get("/members", endpoint="members")
@page("member.read")
def members_page() -> Any:
    return _page()


@bp.post("/members/invite")
@page("member.manage")
def invite_member() -> Any:
    form = {"email": request.form.get("email", "").strip(),
            "role": request.form.get("role", "")}
    with form_errors({"email", "role"}) as errors:
        members.invite(console_access(), form["email"], form["role"])
        db.session.commit()
        flash(f"Invitation sent to {form['email']}.", "ok")
        return redirect(url_for("console.members"))
    return _page(errors, form)


@bp.post("/members/<membership_id>/role")
@page("member.manage")
def change_member_role(membership_id: str) -> Any:
    access = console_access()
    with form_errors(set()) as errors:
        member = members.get_member(access, membership_id)
        members.change_role(access, member, request.form.get("role", ""))
        db.session.commit()
        flash(f"{member.user.name or member.user.email} is now {member.role}.", "ok")
        return redirect(url_for("console.members"))
    return _page(errors)


@bp.post("/members/<membership_id>/remove")
@page("member.manage")
def remove_member(membership_id: str) -> Response | Any:
    access = console_access()
    with form_errors(set()) as errors:
        member = members.get_member(access, membership_id)
        who = member.user.name or member.user.email
        members.remove(access, member)
        db.session.commit()
        flash(f"{who} was removed from {access.tenant.name}.", "ok")
        return redirect(url_for("console.members"))
    return _page(errors)


@bp.post("/members/invitations/<invitation_id>/resend")
@page("member.manage")
def resend_invitation(invitation_id: str) -> Any:
    access = console_access()
    with form_errors(set()) as errors:
        invitation = invitations.resend(access, invitations.get_invitation(access, invitation_id))
        db.session.commit()
        flash(f"A new invitation link was sent to {invitation.email}.", "ok")
        return redirect(url_for("console.members"))
    return _page(errors)


@bp.post("/members/invitations/<invitation_id>/revoke")
@page("member.manage")
def revoke_invitation(invitation_id: str) -> Any:
    access = console_access()
    with form_errors(set()) as errors:
        invitation = invitations.revoke(access, invitations.get_invitation(access, invitation_id))
        db.session.commit()
        flash(f"The invitation to {invitation.email} is withdrawn; its link no longer works.",
              "ok")
        return redirect(url_for("console.members"))
    return _page(errors)
