"""identity: invitations, account tokens, second factors, single sign-on

- `invitations` (tenant-owned, row-level security): a pending offer of a role, to an
  email; no membership exists until it is accepted.
- `account_tokens`: hashes of the tokens in emailed links (invitation, password reset,
  sign-in link), single use, expiring, revocable; platform-level like `users`.
- `user_mfa`, `mfa_challenges`: TOTP enrolment (secret sealed, recovery codes hashed)
  and half-finished sign-ins awaiting their second factor; platform-level.
- `sso_providers` (tenant-owned, row-level security): a tenant's OpenID Connect
  provider; `user_identities` links a user to an issuer's subject; platform-level.
- `tenants.mfa_required`: staff of that tenant must use a second factor.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mfa_challenges',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('auth_method', sa.String(length=16), nullable=False),
    sa.Column('next_url', sa.String(length=2000), nullable=True),
    sa.Column('expires_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('used_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_mfa_challenges_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mfa_challenges')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_mfa_challenges_token_hash'))
    )
    op.create_index(op.f('ix_mfa_challenges_user_id'), 'mfa_challenges', ['user_id'], unique=False)
    op.create_table('user_identities',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('issuer', sa.String(length=400), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('last_used_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_identities_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_identities')),
    sa.UniqueConstraint('issuer', 'subject', name=op.f('uq_user_identities_issuer_subject'))
    )
    op.create_index(op.f('ix_user_identities_user_id'), 'user_identities', ['user_id'], unique=False)
    op.create_table('user_mfa',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('totp_secret_sealed', sa.Text(), nullable=False),
    sa.Column('confirmed_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_step', sa.BigInteger(), nullable=True),
    sa.Column('recovery_code_hashes', sa.JSON(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_mfa_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_mfa')),
    sa.UniqueConstraint('user_id', name=op.f('uq_user_mfa_user_id'))
    )
    op.create_table('invitations',
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('invited_by_id', sa.Uuid(), nullable=True),
    sa.Column('expires_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_sent_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('send_count', sa.Integer(), nullable=False),
    sa.Column('accepted_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('accepted_user_id', sa.Uuid(), nullable=True),
    sa.Column('revoked_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['accepted_user_id'], ['users.id'], name=op.f('fk_invitations_accepted_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['invited_by_id'], ['users.id'], name=op.f('fk_invitations_invited_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_invitations_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations'))
    )
    op.create_index(op.f('ix_invitations_tenant_id'), 'invitations', ['tenant_id'], unique=False)
    op.create_index('uq_invitations_pending_email', 'invitations', ['tenant_id', 'email'], unique=True, postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
    op.create_table('sso_providers',
    sa.Column('issuer', sa.String(length=400), nullable=False),
    sa.Column('client_id', sa.String(length=200), nullable=False),
    sa.Column('client_secret_sealed', sa.Text(), nullable=True),
    sa.Column('allowed_domains', sa.JSON(), nullable=False),
    sa.Column('default_role', sa.String(length=16), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_sso_providers_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sso_providers_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sso_providers')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_sso_providers_tenant_id'))
    )
    op.create_index(op.f('ix_sso_providers_tenant_id'), 'sso_providers', ['tenant_id'], unique=False)
    op.create_table('account_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=24), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('invitation_id', sa.Uuid(), nullable=True),
    sa.Column('scope_tenant_id', sa.Uuid(), nullable=True),
    sa.Column('expires_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invitation_id'], ['invitations.id'], name=op.f('fk_account_tokens_invitation_id_invitations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scope_tenant_id'], ['tenants.id'], name=op.f('fk_account_tokens_scope_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_account_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_account_tokens_token_hash'))
    )
    op.create_index(op.f('ix_account_tokens_invitation_id'), 'account_tokens', ['invitation_id'], unique=False)
    op.create_index(op.f('ix_account_tokens_user_id'), 'account_tokens', ['user_id'], unique=False)
    with op.batch_alter_table('tenants') as batch_op:
        batch_op.add_column(sa.Column('mfa_required', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    rls.enable_tenant_rls(op, "invitations")
    rls.enable_tenant_rls(op, "sso_providers")


def downgrade() -> None:
    rls.disable_tenant_rls(op, "sso_providers")
    rls.disable_tenant_rls(op, "invitations")
    with op.batch_alter_table('tenants') as batch_op:
        batch_op.drop_column('mfa_required')
    op.drop_index(op.f('ix_account_tokens_user_id'), table_name='account_tokens')
    op.drop_index(op.f('ix_account_tokens_invitation_id'), table_name='account_tokens')
    op.drop_table('account_tokens')
    op.drop_index(op.f('ix_sso_providers_tenant_id'), table_name='sso_providers')
    op.drop_table('sso_providers')
    op.drop_index('uq_invitations_pending_email', table_name='invitations', postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
    op.drop_index(op.f('ix_invitations_tenant_id'), table_name='invitations')
    op.drop_table('invitations')
    op.drop_table('user_mfa')
    op.drop_index(op.f('ix_user_identities_user_id'), table_name='user_identities')
    op.drop_table('user_identities')
    op.drop_index(op.f('ix_mfa_challenges_user_id'), table_name='mfa_challenges')
    op.drop_table('mfa_challenges')
