"""Slack: post messages and find people (Web API, OAuth2 v2 bot token).

Slack's Web API answers most failures with HTTP 200 and `{"ok": false, "error": ...}`;
`call` turns those into the framework's stable reasons. Real rate limits come back
as HTTP 429 with Retry-After, which the connection client waits out and retries.
"""

from __future__ import annotations

from typing import Any

from overture.connectors.context import ActionContext
from overture.connectors.errors import ActionFailed
from overture.connectors.spec import Action, Auth, Connector, obj

AUTH_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
    "no_permission", "missing_scope", "not_allowed_token_type", "access_denied",
    "team_access_not_granted", "org_login_required", "ekm_access_denied",
    "two_factor_setup_required", "enterprise_is_restricted",
})
NOT_FOUND_ERRORS = frozenset({
    "channel_not_found", "users_not_found", "user_not_found", "thread_not_found",
    "message_not_found", "not_in_channel", "is_archived",
})
RATE_ERRORS = frozenset({"ratelimited", "rate_limited", "message_limit_exceeded"})
SERVER_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable",
                           "request_timeout"})


def failure(body: dict[str, Any]) -> ActionFailed:
    """The framework's reason for a Slack `{"ok": false, "error": ...}` answer."""
    error = str(body.get("error") or "unknown_error")
    if error in ("missing_scope", "no_permission"):
        reason, detail = "auth_failed", "the Slack token lacks a permission"
    elif error in AUTH_ERRORS:
        reason, detail = "auth_failed", "Slack refused the token"
    elif error in NOT_FOUND_ERRORS:
        reason, detail = "not_found", ("Slack has no such channel, user or thread (or the "
                                       "app is not in the channel)")
    elif error in RATE_ERRORS:
        reason, detail = "rate_limited", "Slack's rate limit is reached"
    elif error in SERVER_ERRORS:
        reason, detail = "http_5xx", "Slack failed"
    else:
        reason, detail = "http_4xx", "Slack rejected the request"
    extra: dict[str, Any] = {"slack_error": error}
    if body.get("needed"):
        extra["needed"] = body["needed"]
    return ActionFailed(reason, f"{detail} ({error})", **extra)


def call(ctx: ActionContext, method: str, *, json: dict[str, Any] | None = None,
         params: dict[str, Any] | None = None, http_method: str = "POST") -> dict[str, Any]:
    """One Web API method (`chat.postMessage`, ...); an `ok: false` answer raises."""
    response = ctx.client.request(http_method, method, json=json, params=params)
    try:
        body = response.json()
    except ValueError as exc:
        raise ActionFailed("http_5xx", f"Slack answered {method} with something not JSON") \
            from exc
    if not isinstance(body, dict) or not body.get("ok"):
        raise failure(body if isinstance(body, dict) else {})
    return body


def post_message(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    payload = {k: data[k] for k in ("channel", "text", "blocks", "thread_ts",
                                    "reply_broadcast", "unfurl_links", "mrkdwn") if k in data}
    sent = call(ctx, "chat.postMessage", json=payload)
    return {"ts": sent["ts"], "channel": sent["channel"]}


def find_user(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    user = call(ctx, "users.lookupByEmail", params={"email": data["email"]},
                http_method="GET")["user"]
    profile = user.get("profile") or {}
    return {"id": user["id"], "name": user.get("name"),
            "real_name": user.get("real_name") or profile.get("real_name"),
            "display_name": profile.get("display_name"), "team_id": user.get("team_id"),
            "is_bot": bool(user.get("is_bot")), "deleted": bool(user.get("deleted"))}


def check(ctx: ActionContext) -> str:
    who = call(ctx, "auth.test")
    return f"signed in to Slack workspace {who.get('team')} as {who.get('user')}"


CONNECTOR = Connector(
    key="slack",
    name="Slack",
    description="Post messages to channels and threads, and find people by email.",
    icon="slack",
    auth=Auth(kind="oauth2", authorize_url="https://slack.com/oauth/v2/authorize",
              token_url="https://slack.com/api/oauth.v2.access",  # noqa: S106 (a URL)
              scopes=("chat:write", "users:read", "users:read.email"), scope_separator=","),
    base_url="https://slack.com/api",
    docs_url="https://api.slack.com/methods/chat.postMessage",
    test=check,
    actions=(
        Action(key="post_message", name="Post a message",
               description="Post a message to a channel (ID like C0123 or #name), a DM (a "
                           "user ID) or, with thread_ts, a thread reply.",
               input_schema=obj({
                   "channel": {"type": "string", "minLength": 1,
                               "description": "channel ID, #name or user ID"},
                   "text": {"type": "string", "minLength": 1, "maxLength": 40000,
                            "description": "the message (mrkdwn); the notification text "
                                           "when blocks are given"},
                   "blocks": {"type": "array", "items": {"type": "object"}, "maxItems": 50,
                              "description": "Block Kit blocks"},
                   "thread_ts": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+$",
                                 "description": "the ts of the message to reply to"},
                   "reply_broadcast": {"type": "boolean"},
                   "unfurl_links": {"type": "boolean"},
                   "mrkdwn": {"type": "boolean"},
               }, ["channel", "text"]),
               output_schema=obj({"ts": {"type": "string"}, "channel": {"type": "string"}}),
               run=post_message, side_effects=True),
        Action(key="find_user", name="Find a user by email",
               description="Look up a member of the workspace by email address.",
               input_schema=obj({"email": {"type": "string", "format": "email",
                                           "pattern": r"^[^@\s]+@[^@\s]+$"}}, ["email"]),
               output_schema=obj({"id": {"type": "string"}, "name": {"type": "string"},
                                  "real_name": {"type": ["string", "null"]},
                                  "display_name": {"type": ["string", "null"]},
                                  "team_id": {"type": ["string", "null"]},
                                  "is_bot": {"type": "boolean"},
                                  "deleted": {"type": "boolean"}}),
               run=find_user),
    ),
)
