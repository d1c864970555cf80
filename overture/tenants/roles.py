"""Roles and the permission matrix: the single source of who may do what.

`docs/permissions.md` is generated from this module (`overture permissions`), and a
test keeps the two in step.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    BUILDER = "builder"
    OPERATOR = "operator"
    VIEWER = "viewer"
    AUDITOR = "auditor"
    MEMBER = "member"  # an end customer in the branded portal


# Most privileged first; used to pick the stronger of two roles a user holds.
RANK = [Role.OWNER, Role.ADMIN, Role.BUILDER, Role.OPERATOR, Role.AUDITOR, Role.VIEWER,
        Role.MEMBER]

# Roles held in an agency that reach its client workspaces. Portal members do not.
AGENCY_REACHING_ROLES = frozenset(RANK[:-1])

PERMISSIONS: dict[str, str] = {
    "tenant.read": "See the tenant's profile and settings",
    "tenant.manage": "Rename the tenant and change its settings",
    "workspace.create": "Create client workspaces (agencies)",
    "workspace.manage": "Rename, suspend, resume and delete client workspaces (agencies)",
    "member.read": "List members and their roles",
    "member.manage": "Invite members, change roles, remove members",
    "apikey.read": "List API keys (never their secrets)",
    "apikey.manage": "Create and revoke API keys",
    "credential.read": "List credentials (masked)",
    "credential.manage": "Create, update and delete credentials",
    "workflow.read": "See workflows and their versions",
    "workflow.edit": "Edit workflow drafts, agents and connections",
    "workflow.publish": "Publish and roll back workflow versions",
    "run.read": "See runs and their timelines",
    "run.start": "Start runs",
    "run.cancel": "Cancel and replay runs",
    "approval.decide": "Approve or reject approval steps",
    "audit.read": "Read the audit log",
    "audit.export": "Export the audit log",
    "billing.read": "See usage and invoices",
    "billing.manage": "Change plan and payment details, budgets and caps",
    "billing.clients": "Define the plans client workspaces are billed at, and assign them "
                       "(agencies)",
    "mcp": "Call the workspace's published workflows and agents as MCP tools (for API "
           "keys)",
    "portal.use": "Use the branded portal: start own runs, chat, answer own approvals",
    "prices.manage": "See and edit the installation's per-model LLM prices, which turn "
                     "every tenant's tokens into cost (platform admins only)",
    "user.manage": "Sign a user out everywhere, disable and enable them (platform admins "
                   "only)",
}

_READ = {"tenant.read", "member.read", "workflow.read", "run.read"}
_OPERATE = _READ | {"run.start", "run.cancel", "approval.decide", "credential.read",
                    "apikey.read", "mcp"}
_BUILD = _OPERATE | {"workflow.edit", "workflow.publish", "credential.manage"}
_ADMIN = _BUILD | {"tenant.manage", "workspace.create", "workspace.manage", "member.manage",
                   "apikey.manage", "audit.read", "audit.export", "billing.read",
                   "billing.clients"}

MATRIX: dict[Role, frozenset[str]] = {
    Role.OWNER: frozenset(_ADMIN | {"billing.manage"}),
    Role.ADMIN: frozenset(_ADMIN),
    Role.BUILDER: frozenset(_BUILD),
    Role.OPERATOR: frozenset(_OPERATE),
    Role.VIEWER: frozenset(_READ),
    Role.AUDITOR: frozenset(_READ | {"audit.read", "audit.export", "billing.read"}),
    Role.MEMBER: frozenset({"portal.use"}),
}

# What a platform admin may do to any tenant, without being a member of it.
PLATFORM_ADMIN = frozenset({"tenant.read", "tenant.manage", "workspace.create",
                            "workspace.manage", "member.read", "member.manage",
                            "audit.read", "audit.export", "billing.read", "billing.manage",
                            "billing.clients", "prices.manage", "user.manage"})

# What a role held in an agency adds in each of its client workspaces, over what the
# role gives there: the agency bills its clients, so its admins set their budgets and
# caps (`billing.manage` in the client), while the agency's own plan and payment
# details stay its owner's. A client workspace's own admin does not get it.
AGENCY_IN_CLIENTS: dict[Role, frozenset[str]] = {Role.ADMIN: frozenset({"billing.manage"})}


def permissions_for(role: Role | str, agency_role: Role | None = None) -> frozenset[str]:
    """What `role` may do in a tenant; `agency_role`: the role held in the tenant's
    agency, when the tenant is a client workspace (see AGENCY_IN_CLIENTS)."""
    found = MATRIX[Role(role)]
    extra = AGENCY_IN_CLIENTS.get(agency_role) if agency_role is not None else None
    return found | extra if extra else found


def stronger(a: Role | None, b: Role | None) -> Role | None:
    if a is None or b is None:
        return a or b
    return a if RANK.index(a) <= RANK.index(b) else b


def parse_role(value: str) -> Role | None:
    try:
        return Role(value)
    except ValueError:
        return None


def markdown_table() -> str:
    columns = [*RANK, "platform admin"]
    head = "| Permission | " + " | ".join(str(c) for c in columns) + " |"
    rows = [head, "| --- |" + " :-: |" * len(columns)]
    for perm, meaning in PERMISSIONS.items():
        marks = ["✓" if perm in MATRIX[r] else "" for r in RANK]
        marks.append("✓" if perm in PLATFORM_ADMIN else "")
        rows.append(f"| `{perm}` {meaning} | " + " | ".join(marks) + " |")
    rows.append("")
    for role, extra in AGENCY_IN_CLIENTS.items():
        rows.append(f"A role of {role} held in an agency also gives, in each of its client "
                    "workspaces: " + ", ".join(f"`{p}`" for p in sorted(extra)) + ".")
    return "\n".join(rows)
