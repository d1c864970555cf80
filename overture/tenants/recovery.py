"""Getting back in by email: password reset links and sign-in links (magic links).

Both send a single-use link (`account_tokens`, 15 minutes) to an active user, and
issuing one withdraws that user's older links of the same purpose, so only the newest
mail works. A request never tells whether the address belongs to anyone:

* the caller's answer is the same (the web layer renders one page, one status);
* the time is comparable: both paths look the user up, make and hash a token, render
  the mail and write one audit event (with `email_known`, as a failed sign-in does)
  in a commit. Only a known address adds the token and outbox rows (two small
  inserts in the same transaction) and, after the commit, handing the message to the
  broker (one Redis push): a millisecond or two, within a network round trip's jitter.

The link itself is built by the caller (`link_for(secret)`): this floor knows no URLs.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable

from overture.platform import audit, mail
from overture.platform.db import PLATFORM_TENANT_ID, utcnow
from overture.platform.errors import LinkNotUsable
from overture.tenants import account_tokens, password_policy
from overture.tenants import sessions as session_store
from overture.tenants.account_tokens import TokenPurpose
from overture.tenants.models import User
from overture.tenants.passwords import hash_password
from overture.tenants.users import find_user_by_email, get_active_user, user_actor

LinkBuilder = Callable[[str], str]
MINUTES = {purpose: int(lifetime.total_seconds() // 60)
           for purpose, lifetime in account_tokens.LIFETIMES.items()}
REQUESTED = {TokenPurpose.PASSWORD_RESET: "auth.password_reset_requested",
             TokenPurpose.SIGN_IN_LINK: "auth.link_requested"}
ANONYMOUS = audit.Actor("anonymous")


def request_password_reset(email: str, link_for: LinkBuilder,
                           tenant_id: uuid.UUID | None = None) -> None:
    """Mail a reset link if `email` belongs to an active user; the caller commits.
    `tenant_id`: the tenant whose address the request came to, whose brand the mail
    carries."""
    _request(TokenPurpose.PASSWORD_RESET, email, link_for, tenant_id)


def request_sign_in_link(email: str, link_for: LinkBuilder,
                         tenant_id: uuid.UUID | None = None) -> None:
    """Mail a sign-in link if `email` belongs to an active user; the caller commits.
    `tenant_id`: the tenant the link signs in to (a portal's), whose brand the mail
    carries."""
    _request(TokenPurpose.SIGN_IN_LINK, email, link_for, tenant_id)


def _request(purpose: str, email: str, link_for: LinkBuilder,
             tenant_id: uuid.UUID | None = None) -> None:
    found = find_user_by_email(email)
    user = found if found is not None and found.is_active else None
    if user is None:
        # The same work as below without keeping any of it (see the module's note).
        secret = secrets.token_urlsafe(32)
        account_tokens.hash_token(secret)
        mail.render(purpose, _mail_context(purpose, email, "", link_for(secret)), tenant_id)
    else:
        account_tokens.revoke_for_user(user.id, purpose)
        _, secret = account_tokens.issue(purpose, user_id=user.id)
        mail.queue_mail(user.email, purpose,
                        _mail_context(purpose, user.email, user.name, link_for(secret)),
                        tenant_id=tenant_id)
    # The typed address is not recorded for an unknown one (it may be a typo of a
    # password, or someone else's address); a known one is the target.
    audit.record(REQUESTED[purpose], target_type="user" if user else None,
                 target_id=user.id if user else None, details={"email_known": user is not None},
                 actor=ANONYMOUS, tenant_id=PLATFORM_TENANT_ID)


def _mail_context(purpose: str, email: str, name: str, link: str) -> dict[str, object]:
    return {"link": link, "email": email, "name": name, "minutes": MINUTES[purpose]}


# --------------------------------------------------------------------------- redeeming


def reset_link_user(secret: str) -> User:
    """Whose reset link this is, without using it up (to show the form)."""
    return _holder(account_tokens.peek(secret, TokenPurpose.PASSWORD_RESET))


def sign_in_link_user(secret: str) -> User:
    """Whom this sign-in link signs in, without using it up (to show the button)."""
    return _holder(account_tokens.peek(secret, TokenPurpose.SIGN_IN_LINK))


def _holder(token: account_tokens.AccountToken) -> User:
    user = get_active_user(token.user_id)
    if user is None:  # disabled since the mail left
        raise LinkNotUsable("revoked", "This link was withdrawn. Ask for a new one.")
    return user


def reset_password(secret: str, password: str) -> User:
    """Set a new password through a reset link and end every session of its user.

    The policy is checked before the link is used, so a refused password leaves the
    link working for another try. The caller commits (and signs the person in)."""
    user = reset_link_user(secret)
    password_policy.check(password, user.email, user.name)
    account_tokens.redeem(secret, TokenPurpose.PASSWORD_RESET)
    user.password_hash = hash_password(password)
    ended = session_store.revoke_all(user.id, session_store.RevokedBecause.PASSWORD_RESET)
    # Whoever held the mailbox could also sign in with a link sent before: not any more.
    account_tokens.revoke_for_user(user.id, TokenPurpose.SIGN_IN_LINK)
    audit.record("auth.password_reset", target_type="user", target_id=user.id,
                 details={"sessions_ended": ended}, actor=user_actor(user),
                 tenant_id=PLATFORM_TENANT_ID)
    return user


def redeem_sign_in_link(secret: str) -> User:
    """Use a sign-in link up and name its user; the caller commits and signs them in."""
    user = sign_in_link_user(secret)
    account_tokens.redeem(secret, TokenPurpose.SIGN_IN_LINK)
    return signed_in(user, "link")


def signed_in(user: User, method: str) -> User:
    """Audit the sign-in the caller is about to complete (after a reset, the page
    signs the person in; the API does not)."""
    user.last_login_at = utcnow()
    audit.record("auth.login", target_type="user", target_id=user.id,
                 details={"method": method}, actor=user_actor(user),
                 tenant_id=PLATFORM_TENANT_ID)
    return user
