"""SimpleFIN bridge: setup tokens and the accesses they become

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sophsync.store.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "simplefin_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=True),
        sa.Column("last_used_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["family.id"],
            name=op.f("fk_simplefin_access_family_id_family"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_simplefin_access_created_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_simplefin_access")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_simplefin_access_token_hash")),
        sa.UniqueConstraint("username", name=op.f("uq_simplefin_access_username")),
    )
    with op.batch_alter_table("simplefin_access", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_simplefin_access_family_id"), ["family_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("simplefin_access", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_simplefin_access_family_id"))
    op.drop_table("simplefin_access")
