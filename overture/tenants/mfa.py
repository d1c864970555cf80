"""Multi-factor authentication: TOTP enrolment, recovery codes, sign-in challenges and
the tenant policy that makes staff enrol.

The TOTP secret is sealed (AES-256-GCM) under the platform's primary master key, the
same keyring the vault wraps tenant data keys with, with associated data naming the
user: a sealed secret copied onto another user's row does not open. The stored value
is `kid|v1:...`, so the key that sealed it is known after a new primary is added.

A challenge is the state between a proven first factor and the second: the browser
holds a random 256-bit id, the table only its SHA-256. It lives five minutes, allows
five wrong codes and is used once; only then does a session begin.

Every event lands in the platform tenant's audit log, where sign-ins are recorded.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from overture.platform import audit
from overture.platform.db import PLATFORM_TENANT_ID, db, utcnow
from overture.platform.errors import Conflict, Forbidden, NotFound, ValidationFailed
from overture.tenants import branding, qr, recovery_codes, totp, vault
from overture.tenants.access import Access
from overture.tenants.mfa_models import MfaChallenge, UserMfa
from overture.tenants.models import Tenant, User
from overture.tenants.roles import Role

ISSUER = "Overture"
RECOVERY_CODES = 10
CHALLENGE_LIFETIME = timedelta(minutes=5)
CHALLENGE_ATTEMPTS = 5
METHOD_LENGTH = 16  # user_sessions.auth_method and mfa_challenges.auth_method


class MfaEnrolmentRequired(Forbidden):
    """The tenant requires a second factor of its staff and this person has none yet."""

    code = "mfa-enrolment-required"
    title = "Two-factor authentication required"


class WrongCode(ValidationFailed):
    def __init__(self, message: str = "does not match: check the code and try again") -> None:
        super().__init__([{"field": "code", "message": message}])


class ChallengeGone(Exception):
    """The challenge is unknown, expired, used or out of attempts: sign in again."""


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str
    svg: str


# --------------------------------------------------------------------------- sealing


def _aad(user_id: uuid.UUID) -> bytes:
    return f"overture/mfa-totp|{user_id}".encode()


def _seal(user_id: uuid.UUID, secret: str) -> str:
    wrapper = vault.key_wrapper()
    kid, sealed = wrapper.wrap(secret.encode(), _aad(user_id))
    vault.ensure_probe(kid)  # a wrong master key now stops the start, as for credentials
    return f"{kid}|{sealed}"


def _open(row: UserMfa) -> str:
    kid, _, sealed = row.totp_secret_sealed.partition("|")
    return vault.key_wrapper().unwrap(kid, sealed, _aad(row.user_id)).decode()


def reseal_under_primary() -> int:
    """Re-seal every TOTP secret not under the primary master key (for a master key
    rotation, before the old key leaves the keyring); how many were re-sealed."""
    primary = vault.key_wrapper().primary_kid
    count = 0
    for row in db.session.scalars(select(UserMfa)):
        if row.totp_secret_sealed.partition("|")[0] != primary:
            row.totp_secret_sealed = _seal(row.user_id, _open(row))
            count += 1
    return count


# --------------------------------------------------------------------------- enrolment


def _row(user_id: uuid.UUID, lock: bool = False) -> UserMfa | None:
    stmt = select(UserMfa).where(UserMfa.user_id == user_id)
    if lock:  # concurrent uses of one code must not both see it unused
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return db.session.scalars(stmt).one_or_none()


def is_enrolled(user_id: uuid.UUID) -> bool:
    return db.session.scalar(select(UserMfa.id).where(
        UserMfa.user_id == user_id, UserMfa.confirmed_at.is_not(None))) is not None


def _record(action: str, user: User, **details: object) -> None:
    audit.record(action, target_type="user", target_id=user.id, details=details or None,
                 tenant_id=PLATFORM_TENANT_ID,
                 actor=audit.Actor("user", str(user.id), user.email))


def status(user: User) -> dict[str, object]:
    row = _row(user.id)
    confirmed = row is not None and row.confirmed_at is not None
    return {
        "enabled": confirmed,
        "pending": row is not None and not confirmed,
        "confirmed_at": row.confirmed_at if confirmed else None,
        "recovery_codes_left": sum(1 for h in row.recovery_code_hashes if h)
        if confirmed else 0,
    }


def _enrolment(user: User, secret: str) -> Enrolment:
    # The authenticator app lists the account under the person's brand: a white-labelled
    # client's staff never see the platform's name there.
    issuer = branding.effective(branding.home_tenant_id(user)).product_name or ISSUER
    uri = totp.provisioning_uri(secret, user.email, issuer)
    return Enrolment(secret=secret, uri=uri, svg=qr.qr_svg(uri))


def begin_enrolment(user: User) -> Enrolment:
    """A new secret, unconfirmed until a code from the authenticator proves it was
    stored. Starting again replaces an unconfirmed secret; a confirmed one stays until
    the factor is turned off."""
    row = _row(user.id, lock=True)
    if row is not None and row.confirmed_at is not None:
        raise Conflict("two-factor authentication is already on; turn it off first")
    secret = totp.new_secret()
    if row is None:
        row = UserMfa(user_id=user.id, totp_secret_sealed="", recovery_code_hashes=[])
        db.session.add(row)
    row.totp_secret_sealed = _seal(user.id, secret)
    row.last_used_step = None
    db.session.flush()
    return _enrolment(user, secret)


def pending_enrolment(user: User) -> Enrolment | None:
    """The enrolment begun but not confirmed, to show its QR code again."""
    row = _row(user.id)
    if row is None or row.confirmed_at is not None:
        return None
    return _enrolment(user, _open(row))


def _new_codes(row: UserMfa) -> list[str]:
    codes = recovery_codes.generate(RECOVERY_CODES)
    row.recovery_code_hashes = [recovery_codes.hash_code(c) for c in codes]
    return codes


def confirm(user: User, code: str) -> list[str]:
    """Prove the authenticator holds the secret; the recovery codes, shown only now."""
    row = _row(user.id, lock=True)
    if row is None or row.confirmed_at is not None:
        raise Conflict("there is no enrolment to confirm: begin one first")
    step = totp.verify(_open(row), code)
    if step is None:
        raise WrongCode("does not match the code your authenticator shows now")
    row.last_used_step, row.confirmed_at = step, utcnow()
    codes = _new_codes(row)
    _record("mfa.enrolled", user, factor="totp")
    return codes


def regenerate_recovery_codes(user: User) -> list[str]:
    """Ten new codes; the old ones stop working. The caller checks recent authentication."""
    row = _row(user.id, lock=True)
    if row is None or row.confirmed_at is None:
        raise NotFound("two-factor authentication is not on")
    codes = _new_codes(row)
    _record("mfa.recovery_codes_regenerated", user)
    return codes


def disable(user: User) -> None:
    """Turn the second factor off. The caller checks recent authentication."""
    row = _row(user.id, lock=True)
    if row is None:
        raise NotFound("two-factor authentication is not on")
    was_on = row.confirmed_at is not None
    db.session.delete(row)
    if was_on:
        _record("mfa.removed", user, factor="totp")


def verify(user: User, code: str) -> str | None:
    """'totp' or 'recovery' when `code` proves the second factor, else None (audited).

    A TOTP code is refused at or before the last step used; a recovery code is struck
    out when used. The row is locked, so two requests cannot spend one code.
    """
    row = _row(user.id, lock=True)
    if row is None or row.confirmed_at is None:
        return None
    candidate = (code or "").strip()[:64]
    digits = "".join(candidate.split())
    if len(digits) == totp.DIGITS and digits.isascii() and digits.isdigit():
        step = totp.verify(_open(row), digits, when=time.time(),
                           last_used_step=row.last_used_step)
        if step is not None:
            row.last_used_step = step
            return "totp"
    else:
        index = recovery_codes.matches(candidate, list(row.recovery_code_hashes))
        if index is not None:
            hashes = list(row.recovery_code_hashes)
            hashes[index] = None
            row.recovery_code_hashes = hashes  # a new list, so the JSON column is written
            _record("auth.mfa_recovery_code_used", user,
                    recovery_codes_left=sum(1 for h in hashes if h))
            return "recovery"
    _record("auth.mfa_failed", user)
    return None


# --------------------------------------------------------------------------- challenges


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_challenge(user: User, method: str, next_url: str | None) -> str:
    """A challenge for `user`, who proved `method`; the id for the browser (only here)."""
    now = utcnow()
    db.session.execute(delete(MfaChallenge).where(MfaChallenge.expires_at <= now))
    token = secrets.token_urlsafe(32)  # 256 bits from the OS's CSPRNG
    db.session.add(MfaChallenge(token_hash=_hash(token), user_id=user.id,
                                auth_method=method[:METHOD_LENGTH],
                                next_url=(next_url or "")[:2000] or None,
                                expires_at=now + CHALLENGE_LIFETIME, attempts=0))
    db.session.flush()
    return token


def _live(token: str | None, lock: bool = False) -> MfaChallenge | None:
    if not token:
        return None
    stmt = select(MfaChallenge).where(MfaChallenge.token_hash == _hash(token))
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    challenge = db.session.scalars(stmt).one_or_none()
    if (challenge is None or challenge.used_at is not None or challenge.expires_at <= utcnow()
            or challenge.attempts >= CHALLENGE_ATTEMPTS):
        return None
    return challenge


def challenge_is_live(token: str | None) -> bool:
    return _live(token) is not None


def session_method(first: str, second: str) -> str:
    """How a session was proven, short enough for its column: 'password+totp'."""
    factor = "totp" if second == "totp" else "rc"
    return f"{first[:METHOD_LENGTH - len(factor) - 1]}+{factor}"


def answer_challenge(token: str | None, code: str) -> tuple[User, str, str | None]:
    """(user, session method, next url) when `code` proves the second factor.

    A wrong code counts an attempt and raises WrongCode (the caller commits first, so
    the count and the audit stay); the last allowed attempt kills the challenge and
    raises ChallengeGone, as do an unknown, expired or used one.
    """
    challenge = _live(token, lock=True)
    if challenge is None:
        raise ChallengeGone()
    user = db.session.get(User, challenge.user_id)
    if user is None or not user.is_active:
        challenge.used_at = utcnow()
        raise ChallengeGone()
    factor = verify(user, code)
    if factor is None:
        challenge.attempts += 1
        if challenge.attempts >= CHALLENGE_ATTEMPTS:
            challenge.used_at = utcnow()
            raise ChallengeGone()
        raise WrongCode()
    challenge.used_at = utcnow()
    return user, session_method(challenge.auth_method, factor), challenge.next_url


# --------------------------------------------------------------------------- tenant policy


def must_enrol(user: User, tenant: Tenant, role: Role | None) -> bool:
    """Staff (every role but the portal's members) of a tenant that requires MFA, who
    have no confirmed second factor."""
    return (tenant.mfa_required and role is not None and role != Role.MEMBER
            and not is_enrolled(user.id))


def require_enrolment_if_owed(access: Access) -> None:
    """For people signed in with a session; API keys are not asked (their creator's
    session was, when the key was made)."""
    principal = access.principal
    if principal.api_key is None and must_enrol(principal.user, access.tenant, access.role):
        raise MfaEnrolmentRequired(
            f"'{access.tenant.name}' requires two-factor authentication of its staff: "
            "turn it on at /account/mfa, then try again")


def set_required(access: Access, required: bool) -> Tenant:
    """Require (or stop requiring) a second factor of the tenant's staff."""
    access.require("tenant.manage")
    tenant = access.require_tenant()
    if tenant.mfa_required != required:
        tenant.mfa_required = required
        audit.record("tenant.mfa_required_changed", target_type="tenant", target_id=tenant.id,
                     details={"mfa_required": required}, tenant_id=tenant.id)
    return tenant
