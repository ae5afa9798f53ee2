"""remember which provider account reported each transaction

Only that source may mark a transaction removed, so linking an account to another source keeps
its history. Existing rows get their account's current source.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bank_transaction") as batch:
        batch.add_column(sa.Column("source_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_bank_transaction_source_id_provider_account",
            "provider_account",
            ["source_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.execute(
        "UPDATE bank_transaction SET source_id = (SELECT account.provider_account_id "
        "FROM account WHERE account.id = bank_transaction.account_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("bank_transaction") as batch:
        batch.drop_constraint("fk_bank_transaction_source_id_provider_account", type_="foreignkey")
        batch.drop_column("source_id")
