"""remember how long a login's bank refresh takes

A sync waits about that long before its first job read, so that one read usually finds the
job done.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connection") as batch:
        batch.add_column(sa.Column("refresh_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connection") as batch:
        batch.drop_column("refresh_seconds")
