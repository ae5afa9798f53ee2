"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 10:26:00.316205
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sophsync.store.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "family",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family")),
    )
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("lock", sa.String(length=100), nullable=True),
        sa.Column("queueing_lock", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("run_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.Column("heartbeat_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_lock"), ["lock"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_queueing_lock"), ["queueing_lock"], unique=False)
        batch_op.create_index("ix_job_state_run_at", ["state", "run_at"], unique=False)

    op.create_table(
        "schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("created_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule")),
        sa.UniqueConstraint("name", "period", name=op.f("uq_schedule_name_period")),
    )
    op.create_table(
        "connection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.String(length=100), nullable=False),
        sa.Column("institution_name", sa.String(length=300), nullable=False),
        sa.Column("provider_login_id", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.String(length=100), nullable=True),
        sa.Column(
            "job_started_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("job_purpose", sa.String(length=16), nullable=True),
        sa.Column("challenge_kind", sa.String(length=32), nullable=True),
        sa.Column("challenge_enc", sa.LargeBinary(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column(
            "last_success_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_attempt_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("data_fresh_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lock_owner", sa.String(length=100), nullable=True),
        sa.Column(
            "lock_expires_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["family.id"],
            name=op.f("fk_connection_family_id_family"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection")),
    )
    with op.batch_alter_table("connection", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connection_family_id"), ["family_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_connection_provider_login_id"), ["provider_login_id"], unique=False
        )

    op.create_table(
        "provider_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=100), nullable=False),
        sa.Column("access_key_enc", sa.LargeBinary(), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=True),
        sa.Column("customer_id", sa.String(length=100), nullable=True),
        sa.Column("verified_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["family.id"],
            name=op.f("fk_provider_credentials_family_id_family"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_credentials")),
        sa.UniqueConstraint("family_id", name=op.f("uq_provider_credentials_family_id")),
    )
    op.create_table(
        "request_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["family.id"],
            name=op.f("fk_request_usage_family_id_family"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_usage")),
        sa.UniqueConstraint("family_id", "month", name=op.f("uq_request_usage_family_id_month")),
    )
    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["family.id"],
            name=op.f("fk_user_account_family_id_family"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account")),
        sa.UniqueConstraint("email", name=op.f("uq_user_account_email")),
    )
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_account_family_id"), ["family_id"], unique=False)

    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_api_token_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_token_token_hash")),
    )
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_token_user_id"), ["user_id"], unique=False)

    op.create_table(
        "provider_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("provider_account_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("mask", sa.String(length=16), nullable=False),
        sa.Column("provider_type", sa.String(length=64), nullable=True),
        sa.Column("provider_subtype", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=True),
        sa.Column("available_minor", sa.BigInteger(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("last_seen_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_provider_account_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_account")),
        sa.UniqueConstraint(
            "connection_id",
            "provider_account_id",
            name=op.f("uq_provider_account_connection_id_provider_account_id"),
        ),
    )
    with op.batch_alter_table("provider_account", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_provider_account_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "sync_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("window_start", sa.Date(), nullable=True),
        sa.Column("window_end", sa.Date(), nullable=True),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_sync_run_connection_id_connection"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["family.id"],
            name=op.f("fk_sync_run_family_id_family"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_run")),
    )
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_run_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sync_run_family_id"), ["family_id"], unique=False)

    op.create_table(
        "account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("subtype", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("available_minor", sa.BigInteger(), nullable=True),
        sa.Column("balance_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("provider_account_id", sa.Integer(), nullable=True),
        sa.Column("invert_sign", sa.Boolean(), nullable=False),
        sa.Column("sync_start_date", sa.Date(), nullable=True),
        sa.Column(
            "last_synced_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["family.id"],
            name=op.f("fk_account_family_id_family"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["provider_account_id"],
            ["provider_account.id"],
            name=op.f("fk_account_provider_account_id_provider_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint("provider_account_id", name=op.f("uq_account_provider_account_id")),
    )
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_family_id"), ["family_id"], unique=False)

    op.create_table(
        "raw_payload",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.Integer(), nullable=False),
        sa.Column("sync_run_id", sa.Integer(), nullable=True),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("captured_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("body_enc", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_raw_payload_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["family.id"],
            name=op.f("fk_raw_payload_family_id_family"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sync_run_id"],
            ["sync_run.id"],
            name=op.f("fk_raw_payload_sync_run_id_sync_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_payload")),
    )
    with op.batch_alter_table("raw_payload", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_raw_payload_family_id"), ["family_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_raw_payload_sync_run_id"), ["sync_run_id"], unique=False
        )

    op.create_table(
        "balance_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("available_minor", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_balance_history_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_history")),
        sa.UniqueConstraint("account_id", "date", name=op.f("uq_balance_history_account_id_date")),
    )
    op.create_table(
        "bank_transaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(length=100), nullable=True),
        sa.Column("previous_ids", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("posted_date", sa.Date(), nullable=True),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("merchant", sa.String(length=300), nullable=True),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("check_number", sa.String(length=32), nullable=True),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sophsync.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_bank_transaction_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_transaction")),
        sa.UniqueConstraint(
            "account_id", "provider_id", name=op.f("uq_bank_transaction_account_id_provider_id")
        ),
    )
    with op.batch_alter_table("bank_transaction", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bank_transaction_account_date", ["account_id", "date"], unique=False
        )
        batch_op.create_index(
            "ix_bank_transaction_fingerprint", ["account_id", "fingerprint"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("bank_transaction", schema=None) as batch_op:
        batch_op.drop_index("ix_bank_transaction_fingerprint")
        batch_op.drop_index("ix_bank_transaction_account_date")

    op.drop_table("bank_transaction")
    op.drop_table("balance_history")
    with op.batch_alter_table("raw_payload", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_raw_payload_sync_run_id"))
        batch_op.drop_index(batch_op.f("ix_raw_payload_family_id"))

    op.drop_table("raw_payload")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_family_id"))

    op.drop_table("account")
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_run_family_id"))
        batch_op.drop_index(batch_op.f("ix_sync_run_connection_id"))

    op.drop_table("sync_run")
    with op.batch_alter_table("provider_account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_account_connection_id"))

    op.drop_table("provider_account")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_token_user_id"))

    op.drop_table("api_token")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_account_family_id"))

    op.drop_table("user_account")
    op.drop_table("request_usage")
    op.drop_table("provider_credentials")
    with op.batch_alter_table("connection", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connection_provider_login_id"))
        batch_op.drop_index(batch_op.f("ix_connection_family_id"))

    op.drop_table("connection")
    op.drop_table("schedule")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("ix_job_state_run_at")
        batch_op.drop_index(batch_op.f("ix_job_queueing_lock"))
        batch_op.drop_index(batch_op.f("ix_job_lock"))

    op.drop_table("job")
    op.drop_table("family")
