"""The database schema: SQLAlchemy 2 models, the same on SQLite and PostgreSQL.

Money is integer minor units (``*_minor``) with an ISO currency; timestamps are UTC; dates of
transactions are calendar dates. Columns ending in ``_enc`` hold Fernet tokens written by
:class:`~sophsync.store.vault.Vault`; nothing secret is stored in plaintext, and bank passwords
and MFA answers are never stored at all.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class AccountType(StrEnum):
    DEPOSITORY = "depository"
    CREDIT_CARD = "credit_card"
    INVESTMENT = "investment"
    LOAN = "loan"
    OTHER = "other"


class ConnectionStatus(StrEnum):
    #: A Sophtron job is running for the login (connect or reconnect).
    CONNECTING = "connecting"
    #: The bank asks a question; ``challenge_*`` says which.
    NEEDS_INPUT = "needs_input"
    #: The job did not finish in time; "check again" polls it once more.
    TIMED_OUT = "timed_out"
    #: Connected; syncs run.
    CONNECTED = "connected"
    #: A refresh asked for MFA (or the bank refused the stored login): a person must act.
    REQUIRES_UPDATE = "requires_update"
    #: The last attempt failed; ``last_error`` says why.
    FAILED = "failed"


class RunStatus(StrEnum):
    RUNNING = "running"
    NEEDS_INPUT = "needs_input"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class TxnStatus(StrEnum):
    ACTIVE = "active"
    #: Sophtron no longer reports it (an authorisation that never posted).
    REMOVED = "removed"


class Family(Base):
    __tablename__ = "family"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    users: Mapped[list[User]] = relationship(back_populates="family")


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER.value)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    family: Mapped[Family] = relationship(back_populates="users")

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value


class ApiToken(Base):
    """A personal access token for the REST API. Only a hash of the token is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The first characters of the token, to recognise it in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ProviderCredentials(Base):
    """A family's Sophtron developer credentials. The Access Key is encrypted."""

    __tablename__ = "provider_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[str] = mapped_column(String(100))
    access_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    base_url: Mapped[str | None] = mapped_column(String(500))
    customer_id: Mapped[str | None] = mapped_column(String(100))
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Connection(Base):
    """One bank login at Sophtron (a v1 UserInstitution, the same id as a v2 member)."""

    __tablename__ = "connection"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id", ondelete="CASCADE"), index=True)
    institution_id: Mapped[str] = mapped_column(String(100))
    institution_name: Mapped[str] = mapped_column(String(300))
    provider_login_id: Mapped[str | None] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(32), default=ConnectionStatus.CONNECTING.value)
    job_id: Mapped[str | None] = mapped_column(String(100))
    job_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: What the current job is for: "connect" or "sync".
    job_purpose: Mapped[str | None] = mapped_column(String(16))
    challenge_kind: Mapped[str | None] = mapped_column(String(32))
    challenge_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    #: The last successful sync.
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When a Sophtron job for this login last succeeded (its data was fresh then).
    data_fresh_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: About how long the bank takes to refresh this login (seconds), learnt from its jobs: a
    #: sync waits this long before its first job read.
    refresh_seconds: Mapped[float | None] = mapped_column(Float)
    lock_owner: Mapped[str | None] = mapped_column(String(100))
    lock_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    provider_accounts: Mapped[list[ProviderAccount]] = relationship(
        back_populates="connection", cascade="all, delete-orphan"
    )


class ProviderAccount(Base):
    """An account as Sophtron reports it under a connection."""

    __tablename__ = "provider_account"
    __table_args__ = (UniqueConstraint("connection_id", "provider_account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connection.id", ondelete="CASCADE"), index=True
    )
    provider_account_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300))
    mask: Mapped[str] = mapped_column(String(16), default="")
    provider_type: Mapped[str | None] = mapped_column(String(64))
    provider_subtype: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    balance_minor: Mapped[int | None] = mapped_column(BigInteger)
    available_minor: Mapped[int | None] = mapped_column(BigInteger)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    connection: Mapped[Connection] = relationship(back_populates="provider_accounts")
    account: Mapped[Account | None] = relationship(back_populates="provider_account")


class Account(Base):
    """A local account: what the household sees, optionally linked to a provider account."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    type: Mapped[str] = mapped_column(String(16), default=AccountType.DEPOSITORY.value)
    subtype: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    available_minor: Mapped[int | None] = mapped_column(BigInteger)
    balance_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    provider_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("provider_account.id", ondelete="SET NULL"), unique=True
    )
    #: Multiply Sophtron's amounts and balances by -1 (a bank that reports the other way).
    invert_sign: Mapped[bool] = mapped_column(Boolean, default=False)
    sync_start_date: Mapped[dt.date | None] = mapped_column(Date)
    last_synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    provider_account: Mapped[ProviderAccount | None] = relationship(back_populates="account")


class Transaction(Base):
    __tablename__ = "bank_transaction"
    __table_args__ = (
        UniqueConstraint("account_id", "provider_id"),
        Index("ix_bank_transaction_account_date", "account_id", "date"),
        Index("ix_bank_transaction_fingerprint", "account_id", "fingerprint"),
        #: Newest-first pages of a family's transactions and their (date, id) cursor.
        Index("ix_bank_transaction_date_id", "date", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    #: The provider account that last reported this transaction (only it may mark it removed).
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("provider_account.id", ondelete="SET NULL")
    )
    provider_id: Mapped[str | None] = mapped_column(String(100))
    #: Other provider ids this transaction was known by (a pending id, a re-issued id).
    previous_ids: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    date: Mapped[dt.date] = mapped_column(Date)
    posted_date: Mapped[dt.date | None] = mapped_column(Date)
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="")
    merchant: Mapped[str | None] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(200))
    check_number: Mapped[str | None] = mapped_column(String(32))
    memo: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=TxnStatus.ACTIVE.value)
    #: Deleted by a person: stays deleted however often Sophtron reports it.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BalanceHistory(Base):
    __tablename__ = "balance_history"
    __table_args__ = (UniqueConstraint("account_id", "date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    date: Mapped[dt.date] = mapped_column(Date)
    balance_minor: Mapped[int] = mapped_column(BigInteger)
    available_minor: Mapped[int | None] = mapped_column(BigInteger)


class SyncRun(Base):
    __tablename__ = "sync_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connection.id", ondelete="SET NULL"), index=True
    )
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING.value)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    window_start: Mapped[dt.date | None] = mapped_column(Date)
    window_end: Mapped[dt.date | None] = mapped_column(Date)
    added: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))


class RawPayload(Base):
    """Sophtron's answers as received, encrypted, for audit and replay."""

    __tablename__ = "raw_payload"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id", ondelete="CASCADE"), index=True)
    sync_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("sync_run.id", ondelete="CASCADE"), index=True
    )
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connection.id", ondelete="CASCADE")
    )
    route: Mapped[str] = mapped_column(String(200))
    captured_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)


class RequestUsage(Base):
    """Sophtron requests spent, per family and calendar month (``YYYY-MM``)."""

    __tablename__ = "request_usage"
    __table_args__ = (UniqueConstraint("family_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id", ondelete="CASCADE"))
    month: Mapped[str] = mapped_column(String(7))
    count: Mapped[int] = mapped_column(Integer, default=0)


class JobState(StrEnum):
    TODO = "todo"
    DOING = "doing"
    DONE = "done"
    FAILED = "failed"


class Job(Base):
    """A unit of background work for the ``local`` job backend (the embedded default)."""

    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_state_run_at", "state", "run_at"),
        #: At most one waiting job per queueing lock, however many processes defer at once
        #: (revision 0006 says why it indexes an expression).
        Index(
            "uq_job_waiting_queueing_lock",
            text("(CASE WHEN state = 'todo' THEN queueing_lock END)"),
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(String(64))
    args: Mapped[str] = mapped_column(Text, default="{}")
    #: Jobs sharing a lock never run at the same time.
    lock: Mapped[str | None] = mapped_column(String(100), index=True)
    #: At most one waiting job per queueing lock.
    queueing_lock: Mapped[str | None] = mapped_column(String(100), index=True)
    state: Mapped[str] = mapped_column(String(16), default=JobState.TODO.value)
    run_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(100))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Schedule(Base):
    """Periodic work already deferred, so that N workers defer each period once."""

    __tablename__ = "schedule"
    __table_args__ = (UniqueConstraint("name", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SimplefinAccess(Base):
    """A SimpleFIN setup token and, once a client claims it, the access it became.

    One row from the first to the last step, so that one id names it in every list: created
    (``token_hash``, until ``expires_at``), claimed (``username`` and ``secret_hash``), revoked.
    Only hashes of the token and of the access secret are stored; both are shown once.
    """

    __tablename__ = "simplefin_access"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    label: Mapped[str] = mapped_column(String(100))
    #: Where the claim and access URLs point (the public URL when the token was made).
    base_url: Mapped[str] = mapped_column(String(500))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The access URL's user name (random, not secret) and a hash of its password.
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
