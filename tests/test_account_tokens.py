"""Tokens in emailed links: single use, bound to purpose, expiring, revocable."""

from __future__ import annotations

from datetime import timedelta

import pytest

from overture.platform.db import db
from overture.platform.errors import LinkNotUsable
from overture.tenants import account_tokens
from overture.tenants.account_tokens import TokenPurpose
from overture.tenants.users import create_user


def _reason(secret: str, purpose: str) -> str:
    with pytest.raises(LinkNotUsable) as caught:
        account_tokens.redeem(secret, purpose)
    return caught.value.reason


def test_a_token_is_single_use_bound_to_purpose_and_stored_hashed(app):
    with app.app_context():
        user = create_user("tok@example.com", password="correct horse battery")
        record, secret = account_tokens.issue(TokenPurpose.PASSWORD_RESET, user_id=user.id)
        assert len(secret) >= 43 and secret not in record.token_hash
        assert _reason(secret, TokenPurpose.SIGN_IN_LINK) == "unknown"
        assert account_tokens.redeem(secret, TokenPurpose.PASSWORD_RESET).user_id == user.id
        assert _reason(secret, TokenPurpose.PASSWORD_RESET) == "used"
        assert _reason(secret + "x", TokenPurpose.PASSWORD_RESET) == "unknown"
        db.session.rollback()


def test_expired_and_revoked_tokens_say_so(app):
    with app.app_context():
        user = create_user("tok2@example.com", password="correct horse battery")
        _, old = account_tokens.issue(TokenPurpose.SIGN_IN_LINK, user_id=user.id,
                                      lifetime=timedelta(seconds=-1))
        assert _reason(old, TokenPurpose.SIGN_IN_LINK) == "expired"
        _, live = account_tokens.issue(TokenPurpose.SIGN_IN_LINK, user_id=user.id)
        assert account_tokens.revoke_for_user(user.id, TokenPurpose.SIGN_IN_LINK) == 1
        assert _reason(live, TokenPurpose.SIGN_IN_LINK) == "revoked"
        db.session.rollback()
