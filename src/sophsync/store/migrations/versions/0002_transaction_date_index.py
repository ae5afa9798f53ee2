"""index transactions by (date, id): the newest-first pages and their cursor

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 12:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_bank_transaction_date_id", "bank_transaction", ["date", "id"])


def downgrade() -> None:
    op.drop_index("ix_bank_transaction_date_id", table_name="bank_transaction")
