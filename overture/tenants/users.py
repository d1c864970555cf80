"""Users: creation, password sign-in."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select

from overture.platform import audit
from overture.platform.db import PLATFORM_TENANT_ID, db, utcnow
from overture.platform.errors import Conflict, ValidationFailed
from overture.platform.ids import parse_id
from overture.tenants import password_policy
from overture.tenants.models import User, UserStatus
from overture.tenants.passwords import hash_password, needs_rehash, verify_password


def normalize_email(raw: str, field: str = "email") -> str:
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationFailed.field(field, str(exc)) from exc


def find_user_by_email(email: str) -> User | None:
    return db.session.scalars(
        select(User).where(func.lower(User.email) == email.strip().lower())
    ).one_or_none()


def create_user(email: str, password: str | None = None, name: str = "",
                is_platform_admin: bool = False) -> User:
    email = normalize_email(email)
    if find_user_by_email(email) is not None:
        raise Conflict("a user with this email exists")
    if password is not None:
        password_policy.check(password, email, name)
    user = User(email=email, name=name or email.split("@")[0],
                password_hash=hash_password(password) if password else None,
                status=UserStatus.ACTIVE if password else UserStatus.INVITED,
                is_platform_admin=is_platform_admin)
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The user these credentials belong to, or None. Says nothing about which part failed."""
    user = find_user_by_email(email or "")
    ok = verify_password(user.password_hash if user else None, password or "")
    if not ok or user is None or not user.is_active:
        return None
    if needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def get_user(user_id: object) -> User | None:
    ident = parse_id(user_id)  # type: ignore[arg-type]
    return db.session.get(User, ident) if ident else None


def get_active_user(user_id: object) -> User | None:
    """The user behind a session, only while active: disabling someone ends their sessions."""
    user = get_user(user_id)
    return user if user is not None and user.is_active else None


def user_actor(user: User) -> audit.Actor:
    return audit.Actor("user", str(user.id), user.email)


def sign_in(email: str, password: str) -> User | None:
    """Authenticate and audit the attempt in the platform's log. A failure records
    whether the email was known, never the typed email itself (people paste
    passwords into the wrong field)."""
    user = authenticate(email, password)
    if user is not None:
        audit.record("auth.login", target_type="user", target_id=user.id,
                     actor=user_actor(user), tenant_id=PLATFORM_TENANT_ID)
        return user
    known = find_user_by_email(email or "")
    audit.record("auth.login_failed", target_type="user" if known else None,
                 target_id=known.id if known else None,
                 details={"email_known": known is not None},
                 actor=audit.Actor("anonymous"), tenant_id=PLATFORM_TENANT_ID)
    return None


def sign_out(user: User) -> None:
    audit.record("auth.logout", target_type="user", target_id=user.id,
                 actor=user_actor(user), tenant_id=PLATFORM_TENANT_ID)
