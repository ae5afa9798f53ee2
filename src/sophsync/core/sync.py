"""Syncing a connection: refresh at Sophtron, then read balances and transactions, then import.

One sync of one connection, under a lock held in the database so that two syncs of one login never
overlap, whichever process runs them:

1. Refresh: one ``RefreshUserInstitution`` for the whole login, skipped when a Sophtron job for
   it succeeded within the last ``FRESH_SECONDS`` (right after connecting). When the refresh asks
   for MFA the connection becomes ``requires_update`` with the challenge stored and the run ends
   ``needs_input``; once a person answers, the next sync picks the same job up again.
2. Read: one ``GetUserInstitutionAccounts`` for every balance, then one
   ``GetTransactionsByTransactionDate`` per linked account for the window
   [max(sync start date, last successful sync - overlap), today + 1].
3. Import (see ``importer``), record balance history, and a sync run with its counts and the
   Sophtron requests it spent.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, Table, bindparam, insert, or_, select, update
from sqlalchemy import Connection as SQLConnection

from ..errors import NeedsUser, NotFound, QuotaExceeded, Retryable, SophsyncError
from ..sophtron import Client, JobState, SophtronError, job_status
from ..sophtron.models import Transaction as SophtronTransaction
from ..store.models import (
    Account,
    BalanceHistory,
    Connection,
    ConnectionStatus,
    RunStatus,
    SyncRun,
)
from ..store.upsert import upsert
from .app import Core, load
from .connect import (
    LinkedAccount,
    apply_job_status,
    archive,
    archived,
    job_done,
    report_provider_accounts,
    write_archived,
)
from .credentials import sophtron_error, stored_client, stored_credentials
from .families import Actor, require_admin
from .importer import ImportCounts, import_transactions
from .quota import RequestMeter, usage_in, within_budget

#: A login whose Sophtron job succeeded this recently is not refreshed again.
FRESH_SECONDS = 600.0


@dataclass(frozen=True)
class SyncRunView:
    id: int
    connection_id: int | None
    trigger: str
    status: RunStatus
    added: int
    updated: int
    unchanged: int
    removed: int
    requests: int
    error: str | None
    error_code: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    window_start: dt.date | None
    window_end: dt.date | None

    @classmethod
    def of(cls, run: SyncRun) -> SyncRunView:
        return cls(
            run.id,
            run.connection_id,
            run.trigger,
            RunStatus(run.status),
            run.added,
            run.updated,
            run.unchanged,
            run.removed,
            run.requests,
            run.error,
            run.error_code,
            run.started_at,
            run.finished_at,
            run.window_start,
            run.window_end,
        )


@dataclass
class Poller:
    """How a sync waits for a Sophtron job.

    Sophtron cannot say when a job ends, so every job read before the one that finds it done is
    a request spent on waiting. With ``learn`` (the default) the first read comes after about as
    long as the login's refreshes take (``Connection.refresh_seconds``, at most
    ``longest_first_wait``), so that it usually finds the job done; a login with nothing learnt
    yet is read at once. Later reads come at intervals growing from ``interval`` to ``maximum``.
    """

    interval: float = 2.0
    maximum: float = 10.0
    learn: bool = True
    longest_first_wait: float = 60.0
    sleep: Callable[[float], None] = time.sleep

    def first_wait(self, expected: float | None, elapsed: float) -> float:
        """Seconds to wait before the first read of a job that has run ``elapsed`` seconds."""
        if not self.learn or expected is None:
            return 0.0
        return max(0.0, min(expected, self.longest_first_wait) - elapsed)

    def delay(self, polls: int) -> float:
        return min(self.maximum, self.interval * 1.5**polls)


#: When one job read after the learnt wait found the refresh done, the job may have ended well
#: before: the next sync waits this much less, so that the estimate follows a bank that got
#: faster (about 1 % a sync; a bank five times faster is caught up with in some 160 syncs).
SHORTEN = 0.99
#: When the first read came too early, the job took at most until the read that found it done;
#: the next sync waits this much longer than that, so that the estimate does not come too early
#: again for a while (one extra job read in about 28 syncs of a bank whose refreshes take 10 s).
MARGIN = 1.1


def learnt_refresh_seconds(
    expected: float | None, first_wait: float, reads: int, took: float
) -> float | None:
    """How long the next refresh of a login should be expected to take.

    ``took`` is the time from starting the job until the read that found it done, ``reads`` the
    number of job reads, ``first_wait`` the wait before the first.
    """
    if reads == 1 and expected is not None and first_wait > 0:
        return min(expected, took) * SHORTEN
    if took <= 0:
        return expected
    return took * MARGIN if expected is not None and reads > 1 else took


def acquire_lock(core: Core, connection_id: int, owner: str) -> bool:
    """Take the connection's sync lock (atomic in the database); False when someone holds it."""
    with core.connection() as plain:
        return _lock(core, plain, connection_id, owner)


def _lock(core: Core, db: SQLConnection, connection_id: int, owner: str) -> bool:
    return bool(db.execute(_LOCK, _held(core, connection_id, owner)).rowcount)


def _held(core: Core, connection_id: int, owner: str) -> dict[str, object]:
    """The parameters of :data:`_LOCK`: the lock for ``owner``, from now."""
    now = core.now()
    return {
        "connection_id": connection_id,
        "now": now,
        "lock_owner": owner,
        "lock_expires_at": now + dt.timedelta(seconds=core.settings.lock_seconds),
    }


def _retake(core: Core, db: SQLConnection, connection_id: int, owner: str) -> bool:
    """Take back a lock that ``owner`` still holds: an earlier attempt of the same job could
    not give it back (the database refused its last writes) and the job now runs again. The
    runs that attempt left 'running' are closed as interrupted; under the lock, no other sync
    of the connection can be running. False when someone else holds the lock."""
    now = core.now()
    held = {
        "connection_id": connection_id,
        "owner": owner,
        "lock_expires_at": now + dt.timedelta(seconds=core.settings.lock_seconds),
    }
    if not db.execute(_HELD_BY, held).rowcount:
        return False
    interrupt_runs(db, now, SyncRun.connection_id == connection_id)
    return True


INTERRUPTED = (
    "The sync was interrupted before it could record its end (its worker stopped, or the "
    "database could not be reached); the next sync finishes the work."
)


def interrupt_runs(db: SQLConnection, now: dt.datetime, *where: ColumnElement[bool]) -> int:
    """Close the sync runs still 'running' that match ``where`` as interrupted, in the caller's
    transaction (in an ORM session, ``session.connection()``); how many."""
    result = db.execute(
        update(_RUNS)
        .where(_RUNS.c.status == RunStatus.RUNNING.value, *where)
        .values(
            status=RunStatus.FAILED.value,
            finished_at=now,
            error=INTERRUPTED,
            error_code="interrupted",
        )
    )
    return int(result.rowcount)


def release_lock(core: Core, connection_id: int, owner: str) -> None:
    with core.connection() as plain:
        _unlock(plain, connection_id, owner)


def _unlock(
    db: SQLConnection, connection_id: int, owner: str, news: dict[str, object] | None = None
) -> bool:
    """Give the lock back if ``owner`` holds it, writing ``news`` to the connection with it;
    False when ``owner`` does not hold it (nothing written)."""
    free = {
        "connection_id": connection_id,
        "owner": owner,
        "lock_owner": None,
        "lock_expires_at": None,
        **(news or {}),
    }
    return bool(db.execute(_HELD_BY, free).rowcount)


#: Told how a sync goes: what it does now, accounts read so far, accounts to read.
ProgressCallback = Callable[[str, int, int], None]


def _quiet(step: str, done: int, total: int) -> None:
    """The default progress callback: says nothing."""


def sync_connection(
    core: Core,
    connection_id: int,
    *,
    trigger: str = "manual",
    backfill_from: dt.date | None = None,
    poller: Poller | None = None,
    owner: str | None = None,
    progress: ProgressCallback = _quiet,
) -> SyncRunView:
    """Sync one connection now. Raises :class:`Retryable` when another sync holds its lock.
    ``progress`` hears of each step (the refresh, then each account read).

    A sync writes in few transactions: one takes the lock and starts the run, one records the
    refresh job, one each read of the job while it runs, one the finished job with the accounts
    and balances, and one every account's transactions with the run's end and the lock given
    back (see :class:`_Unwritten`).
    """
    owner = owner or f"sync-{uuid.uuid4()}"
    start = _begin(core, connection_id, owner, trigger)
    meter = RequestMeter(core, start.connection.family_id)
    unwritten = _Unwritten(start, backfill_from)
    try:
        outcome = _sync_locked(core, start, poller or Poller(), progress, meter, unwritten)
        return _finish(core, start, owner, meter, outcome, unwritten)
    except BaseException:
        release_lock(core, connection_id, owner)
        raise


@dataclass(frozen=True)
class _Login:
    """What a sync reads of its connection when it takes the lock (and never writes through)."""

    id: int
    family_id: int
    institution_name: str
    provider_login_id: str | None
    status: str
    job_id: str | None
    job_purpose: str | None
    job_started_at: dt.datetime | None
    data_fresh_at: dt.datetime | None
    refresh_seconds: float | None


@dataclass
class _Start:
    """What the sync's first transaction wrote and read, under the lock."""

    run_id: int
    trigger: str
    started_at: dt.datetime
    #: The connection as it was when the lock was taken.
    connection: _Login
    #: Requests spent this month, for a scheduled sync's budget check.
    spent: int | None
    #: The family's Sophtron User ID, Access Key and base URL, or None when none are saved
    #: (never in a repr: the key is a secret).
    credentials: tuple[str, str, str | None] | None = field(repr=False)


@dataclass
class _Outcome:
    status: RunStatus
    error: SophsyncError | None = None
    window: tuple[dt.date | None, dt.date | None] = (None, None)


#: Transactions a sync may hold read and not yet written; once it holds as many, it writes them
#: in a transaction of their own instead of waiting for the run's end.
BATCH_ROWS = 5_000


class _Read(NamedTuple):
    """An account's transactions as Sophtron reported them for the dates [first, last]."""

    account: LinkedAccount
    first: dt.date
    last: dt.date
    transactions: list[SophtronTransaction]


@dataclass
class _Unwritten:
    """What a sync has read and not yet written.

    Every transaction a sync commits costs a database connection from the pool and a commit,
    and a worker running hundreds of syncs at once spends its CPU after the bank's refresh (the
    refresh itself is waited for), so after the refresh a sync writes twice: the finished job
    and its reply with the accounts (the accounts' reply names the accounts to read), then every
    account's transactions with the run's end (:func:`_finish`), or sooner once it holds
    :data:`BATCH_ROWS` transactions. A sync that fails part way still writes what it read; one
    that stops (its process killed) has written none of what it held, and the next sync reads
    it again: an account's window moves on only with its transactions.
    """

    start: _Start
    backfill_from: dt.date | None
    #: Replies received, as their archive rows.
    archived: list[dict[str, Any]] = field(default_factory=list)
    #: What the finished refresh job tells of the connection.
    news: dict[str, object] = field(default_factory=dict)
    reads: list[_Read] = field(default_factory=list)
    rows: int = 0
    #: What the written transactions changed (committed).
    counts: ImportCounts = field(default_factory=ImportCounts)

    def archive(self, core: Core, route: str, payload: Any) -> None:
        start = self.start
        self.archived.append(archived(core, start.connection, start.run_id, route, payload))

    def read(
        self,
        account: LinkedAccount,
        first: dt.date,
        last: dt.date,
        found: list[SophtronTransaction],
    ) -> None:
        self.reads.append(_Read(account, first, last, found))
        self.rows += len(found)

    @contextmanager
    def writing(
        self, core: Core, meter: RequestMeter
    ) -> Iterator[tuple[SQLConnection, ImportCounts]]:
        """A transaction that first writes everything held and last adds the sync's requests to
        the month's usage; yields it with what all the sync's writes change once it commits.
        What was held is let go when it has committed."""
        with core.connection() as db:
            counts = self._write(core, db)
            yield db, counts
            meter.flush(db)
        self.archived, self.news, self.reads, self.rows = [], {}, [], 0
        self.counts = counts

    def _write(self, core: Core, db: SQLConnection) -> ImportCounts:
        write_archived(db, self.archived)
        if self.news:
            db.execute(_CONNECTION, {"connection_id": self.start.connection.id, **self.news})
        counts = ImportCounts()
        counts += self.counts
        ids = [read.account.id for read in self.reads]
        present = _mark_synced(core, db, ids, self.backfill_from) if ids else set()
        for account, first, last, transactions in self.reads:
            if account.id in present:
                counts += import_transactions(db, account, transactions, first, last)
        return counts


def _begin(core: Core, connection_id: int, owner: str, trigger: str) -> _Start:
    """Take the lock, start the run, and read what the sync needs, in one transaction (plain
    statements: nothing is loaded into an ORM session)."""
    with core.connection() as plain:
        # The lock taken and the connection read in one statement; when the lock is not free,
        # this owner may hold it still (see _retake).
        row = plain.execute(_LOCKED, _held(core, connection_id, owner)).first()
        if row is None:
            locked = _retake(core, plain, connection_id, owner)
            row = plain.execute(_LOGIN, {"connection_id": connection_id}).first()
            if row is None:
                raise NotFound(f"No connection {connection_id}")
            if not locked:
                raise Retryable(
                    f"Connection {connection_id} is being synced already",
                    retry_after=30,
                    code="sync_in_progress",
                )
        connection = _Login(*row)
        started_at = core.now()
        run = {
            "family_id": connection.family_id,
            "connection_id": connection_id,
            "trigger": trigger,
            "status": RunStatus.RUNNING.value,
            "started_at": started_at,
        }
        run_id = plain.execute(_NEW_RUN, run).scalar_one()
        spent = usage_in(plain, core, connection.family_id) if trigger == "scheduled" else None
        return _Start(
            run_id,
            trigger,
            started_at,
            connection,
            spent,
            stored_credentials(core, plain, connection.family_id),
        )


def _finish(
    core: Core,
    start: _Start,
    owner: str,
    meter: RequestMeter,
    outcome: _Outcome,
    unwritten: _Unwritten,
) -> SyncRunView:
    """Write what the sync holds unwritten, record how the run ended, and give the lock back, in
    one transaction (plain statements: nothing is read back)."""
    with unwritten.writing(core, meter) as (plain, counts):
        now = core.now()
        error = outcome.error
        view = SyncRunView(
            id=start.run_id,
            connection_id=start.connection.id,
            trigger=start.trigger,
            status=outcome.status,
            added=counts.added,
            updated=counts.updated,
            unchanged=counts.unchanged,
            removed=counts.removed,
            requests=meter.total,
            error=None if error is None else error.message,
            error_code=None if error is None else error.code,
            started_at=start.started_at,
            finished_at=now,
            window_start=outcome.window[0],
            window_end=outcome.window[1],
        )
        ended: dict[str, object] = {
            "status": view.status.value,
            "requests": view.requests,
            "finished_at": now,
            "error": view.error,
            "error_code": view.error_code,
            "added": view.added,
            "updated": view.updated,
            "unchanged": view.unchanged,
            "removed": view.removed,
            "window_start": view.window_start,
            "window_end": view.window_end,
        }
        news: dict[str, object] = {}
        if outcome.status is RunStatus.SUCCEEDED:
            news = {"last_success_at": now, "last_error": None, "last_error_code": None}
        elif outcome.status is RunStatus.FAILED and not isinstance(error, QuotaExceeded):
            assert error is not None
            news = {"last_error": error.message, "last_error_code": error.code}
        plain.execute(_RUN, {"run_id": start.run_id, **ended})
        # The news and the lock given back in one UPDATE; the news alone when the lock is no
        # longer this sync's (it expired and another sync took it).
        if not _unlock(plain, start.connection.id, owner, news) and news:
            plain.execute(_CONNECTION, {"connection_id": start.connection.id, **news})
    return view


def _sync_locked(
    core: Core,
    start: _Start,
    poller: Poller,
    progress: ProgressCallback,
    meter: RequestMeter,
    unwritten: _Unwritten,
) -> _Outcome:
    try:
        if start.spent is not None:
            within_budget(core, start.spent)
        _check_syncable(start.connection)
        with stored_client(core, start.credentials, meter.count) as client:
            try:
                progress("refreshing at the bank", 0, 0)
                if not _refresh(core, client, start, poller, unwritten):
                    return _Outcome(
                        RunStatus.NEEDS_INPUT,
                        NeedsUser(
                            "The bank asks for verification before it can sync: answer it, and the "
                            "sync resumes.",
                            code="requires_update",
                        ),
                    )
                return _read(core, client, start, meter, progress, unwritten)
            except SophtronError as error:
                raise sophtron_error(error) from None
    except SophsyncError as error:
        return _Outcome(RunStatus.FAILED, error)


def _check_syncable(connection: _Login) -> None:
    status = ConnectionStatus(connection.status)
    resuming = (
        connection.job_purpose == "sync"
        and connection.job_id is not None
        and (status is ConnectionStatus.CONNECTING)
    )
    if status is ConnectionStatus.CONNECTED or resuming:
        return
    if status is ConnectionStatus.REQUIRES_UPDATE:
        raise NeedsUser(
            f"{connection.institution_name} needs a person: answer the bank's question or "
            "reconnect, then sync again.",
            code="requires_update",
        )
    raise NeedsUser(
        f"{connection.institution_name} is not connected ({status.value}); finish connecting it "
        "first.",
        code="not_connected",
    )


def _refresh(
    core: Core, client: Client, start: _Start, poller: Poller, unwritten: _Unwritten
) -> bool:
    """Have Sophtron refresh the login; False when the refresh waits for a person. The finished
    job is left in ``unwritten``, written with the accounts."""
    connection_id, run_id = start.connection.id, start.run_id
    connection = start.connection
    resuming = connection.job_purpose == "sync" and connection.job_id is not None
    fresh = (
        connection.data_fresh_at is not None
        and (core.now() - connection.data_fresh_at).total_seconds() < FRESH_SECONDS
    )
    if fresh and not resuming:
        return True
    login_id = connection.provider_login_id
    job_id = connection.job_id if resuming else None
    expected = connection.refresh_seconds
    started_at = connection.job_started_at
    if job_id is None:
        assert login_id is not None
        job_id = client.refresh_user_institution(login_id).job_id
        started_at = core.now()
        with core.connection() as plain:
            recorded = {"job_id": job_id, "job_purpose": "sync", "job_started_at": started_at}
            plain.execute(_CONNECTION, {"connection_id": connection_id, **recorded})
    began = time.monotonic()
    elapsed = 0.0 if started_at is None else (core.now() - started_at).total_seconds()
    deadline = began + core.settings.connect_timeout_seconds
    first_wait = min(poller.first_wait(expected, elapsed), core.settings.connect_timeout_seconds)
    if first_wait > 0:
        poller.sleep(first_wait)
    polls = 0
    while True:
        job = client.get_job_information_by_id(job_id)
        status = job_status(job)
        if status.state is JobState.SUCCEEDED:
            # What a read of a finished refresh records does not depend on the stored
            # connection: plain statements, with no ORM load of it.
            unwritten.archive(core, "GetJobInformationByID", job)
            unwritten.news = {**job_done(core), "job_purpose": None}
            if not resuming:
                took = elapsed + time.monotonic() - began
                learnt = learnt_refresh_seconds(expected, first_wait, polls + 1, took)
                unwritten.news["refresh_seconds"] = learnt
            return True
        if status.state is JobState.RUNNING:
            with core.connection() as plain:
                archive(core, plain, connection, run_id, "GetJobInformationByID", job)
                running = {"status": ConnectionStatus.CONNECTING.value}
                plain.execute(_CONNECTION, {"connection_id": connection_id, **running})
        else:
            with core.session() as session:
                row = load(session, Connection, connection_id)
                archive(core, session.connection(), row, run_id, "GetJobInformationByID", job)
                apply_job_status(core, session, client, row, status, run_id)
                if status.state is JobState.NEEDS_INPUT:
                    return False
                message = row.last_error or "The bank refresh failed."
                code = row.last_error_code or "refresh_failed"
                needs_person = row.status == ConnectionStatus.REQUIRES_UPDATE.value
            if needs_person:
                raise NeedsUser(message, code=code)
            raise Retryable(message, code=code)
        if time.monotonic() >= deadline:
            with core.connection() as plain:
                given_up = {
                    "status": ConnectionStatus.CONNECTED.value,
                    "job_id": None,
                    "job_purpose": None,
                }
                plain.execute(_CONNECTION, {"connection_id": connection_id, **given_up})
            raise Retryable(
                "The bank did not finish refreshing in time; the next sync tries again.",
                code="refresh_timeout",
            )
        poller.sleep(poller.delay(polls))
        polls += 1


def window(
    core: Core, account: LinkedAccount, backfill_from: dt.date | None
) -> tuple[dt.date, dt.date]:
    """The dates to read for an account: see the module docstring."""
    today = core.today()
    start = account.sync_start_date or (today - dt.timedelta(days=core.settings.history_days))
    if account.last_synced_at is not None and backfill_from is None:
        resume = account.last_synced_at.date() - dt.timedelta(days=core.settings.overlap_days)
        start = max(start, resume)
    if backfill_from is not None:
        start = min(start, backfill_from)
    return start, today + dt.timedelta(days=1)


def _read(
    core: Core,
    client: Client,
    start: _Start,
    meter: RequestMeter,
    progress: ProgressCallback,
    unwritten: _Unwritten,
) -> _Outcome:
    """Read the accounts, write them with the finished job, then read each linked account's
    transactions into ``unwritten``."""
    connection = start.connection
    assert connection.provider_login_id is not None
    found = client.get_user_institution_accounts(connection.provider_login_id)
    unwritten.archive(core, "GetUserInstitutionAccounts", found)
    with unwritten.writing(core, meter) as (plain, _):
        linked = report_provider_accounts(core, plain, connection.id, found)
        _update_balances(core, plain, linked)
    # Each linked account (as read now: its rows are matched against it, never written through
    # it) with the dates to read for it.
    reads = [(account, *window(core, account, unwritten.backfill_from)) for account in linked]
    for done, (account, first, last) in enumerate(reads):
        progress(f"reading {account.name}", done, len(reads))
        transactions = client.get_transactions_by_transaction_date(account.sophtron_id, first, last)
        unwritten.archive(core, "GetTransactionsByTransactionDate", transactions)
        unwritten.read(account, first, last, transactions)
        if unwritten.rows >= BATCH_ROWS:
            with unwritten.writing(core, meter):
                pass  # what is held is written as the transaction begins
    progress("done", len(reads), len(reads))
    starts, ends = [read[1] for read in reads], [read[2] for read in reads]
    return _Outcome(
        RunStatus.SUCCEEDED, window=(min(starts, default=None), max(ends, default=None))
    )


def _mark_synced(
    core: Core, db: SQLConnection, account_ids: list[int], backfill_from: dt.date | None
) -> set[int]:
    """Record that the accounts were read now, and how far back a backfill reached, with one
    UPDATE each for all; the ids of those still there (an account deleted during the sync is
    left out: its rows would go with it)."""
    now = core.now()
    synced = db.execute(
        _ACCOUNT, [{"account_id": id_, "last_synced_at": now} for id_ in account_ids]
    )
    present = set(account_ids)
    if synced.rowcount != len(account_ids):
        present = set(db.scalars(select(_ACCOUNTS.c.id).where(_ACCOUNTS.c.id.in_(account_ids))))
    if backfill_from is not None:
        backfill = {"backfill_from": backfill_from, "sync_start_date": backfill_from}
        db.execute(_BACKFILL, [{"account_id": id_, **backfill} for id_ in account_ids])
    return present


def _update_balances(core: Core, db: SQLConnection, accounts: Sequence[LinkedAccount]) -> None:
    """The accounts' balances as the bank reports them now, and today's entry in their history:
    one UPDATE and one upsert for all."""
    now, today = core.now(), core.today()
    balances: list[dict[str, Any]] = []
    for account in accounts:
        if account.balance_minor is None:
            continue
        sign = -1 if account.invert_sign else 1
        available = None if account.available_minor is None else sign * account.available_minor
        balances.append(
            {
                "account_id": account.id,
                "balance_minor": sign * account.balance_minor,
                "available_minor": available,
            }
        )
    if not balances:
        return
    db.execute(_ACCOUNT, [{**balance, "balance_at": now} for balance in balances])
    upsert(
        db,
        _BALANCES,
        ("account_id", "date"),
        [{**balance, "date": today} for balance in balances],
        replace=("balance_minor", "available_minor"),
    )


_BALANCES = cast(Table, BalanceHistory.__table__)
_RUNS = cast(Table, SyncRun.__table__)
_CONNECTIONS = cast(Table, Connection.__table__)
_ACCOUNTS = cast(Table, Account.__table__)
_NEW_RUN = insert(_RUNS).returning(_RUNS.c.id)
#: What a sync reads of its connection (the fields of :class:`_Login`, in order).
_LOGIN = select(*(_CONNECTIONS.c[item.name] for item in fields(_Login))).where(
    _CONNECTIONS.c.id == bindparam("connection_id")
)
# UPDATEs built once (a statement built at every call costs more than SQLite takes to run it).
# They set the columns named in the parameters they are executed with.
_RUN = update(_RUNS).where(_RUNS.c.id == bindparam("run_id"))
_CONNECTION = update(_CONNECTIONS).where(_CONNECTIONS.c.id == bindparam("connection_id"))
_ACCOUNT = update(_ACCOUNTS).where(_ACCOUNTS.c.id == bindparam("account_id"))
#: The lock, when it is free or has expired.
_LOCK = _CONNECTION.where(
    or_(_CONNECTIONS.c.lock_owner.is_(None), _CONNECTIONS.c.lock_expires_at < bindparam("now"))
)
#: The lock taken, returning what a sync reads of the connection (as _LOGIN does).
_LOCKED = _LOCK.returning(*_LOGIN.selected_columns)
#: The lock, when ``owner`` holds it.
_HELD_BY = _CONNECTION.where(_CONNECTIONS.c.lock_owner == bindparam("owner"))
#: The account's first synced date, when the backfill (``backfill_from``) reaches further back.
_BACKFILL = _ACCOUNT.where(
    or_(
        _ACCOUNTS.c.sync_start_date.is_(None),
        _ACCOUNTS.c.sync_start_date > bindparam("backfill_from"),
    )
)


def sync_family(
    core: Core,
    actor: Actor,
    *,
    trigger: str = "manual",
    backfill_from: dt.date | None = None,
    poller: Poller | None = None,
) -> list[SyncRunView]:
    """Sync every connection of the actor's family (admins only)."""
    require_admin(actor, "start a sync")
    with core.session() as session:
        ids = list(
            session.scalars(
                select(Connection.id)
                .where(Connection.family_id == actor.family_id)
                .order_by(Connection.id)
            )
        )
    if not ids:
        raise NeedsUser(
            "No institution is connected yet. Connect a bank first.", code="no_connections"
        )
    runs = []
    for connection_id in ids:
        try:
            runs.append(
                sync_connection(
                    core, connection_id, trigger=trigger, backfill_from=backfill_from, poller=poller
                )
            )
        except Retryable:
            continue  # being synced already: that sync covers it
    return runs


def sync_runs(
    core: Core, actor: Actor, limit: int = 50, connection_id: int | None = None
) -> list[SyncRunView]:
    """The family's latest sync runs (of one connection if given), newest first."""
    with core.session() as session:
        query = select(SyncRun).where(SyncRun.family_id == actor.family_id)
        if connection_id is not None:
            query = query.where(SyncRun.connection_id == connection_id)
        rows = session.scalars(query.order_by(SyncRun.id.desc()).limit(limit))
        return [SyncRunView.of(row) for row in rows]


def last_sync_time(core: Core, now: dt.datetime) -> dt.datetime:
    """The daily sync time's latest occurrence at or before ``now`` (UTC)."""
    latest = dt.datetime.combine(now.date(), core.settings.sync_time, dt.UTC)
    return latest if now >= latest else latest - dt.timedelta(days=1)


def next_sync_at(core: Core, last_success_at: dt.datetime | None) -> dt.datetime:
    """When the daily schedule next syncs a connected login last synced at ``last_success_at``
    (now, when the latest sync time passed without a sync)."""
    now = core.now()
    latest = last_sync_time(core, now)
    if last_success_at is None or last_success_at < latest:
        return now
    return latest + dt.timedelta(days=1)
