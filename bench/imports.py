"""Import throughput: 200,000 sandbox transactions of one account through the real import path
(``importer.import_transactions``, as a sync calls it) into a fresh store, against raw inserts
of the same rows into an identical table, on SQLite and on PostgreSQL; and a re-sync of the same
rows (every one a duplicate).

The rows come from the sandbox over HTTP once, read with the SDK as a sync reads them, so the
import sees the same parsed ``Transaction`` models it sees in production. The raw baselines get
the rows already converted (minor units, fingerprint, dates): they measure what the database
itself costs, so the ratio import / raw says how much the import path adds on top of it.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from common import (
    ACCESS_KEY,
    TODAY,
    USER_ID,
    Record,
    connect,
    per_second,
    postgres_database,
)
from sqlalchemy.exc import DBAPIError

from sophsync.core import families
from sophsync.core.app import Core
from sophsync.core.importer import Incoming, import_transactions
from sophsync.sandbox import SandboxConfig, SandboxServer
from sophsync.settings import Settings
from sophsync.sophtron import Client
from sophsync.sophtron.models import Transaction as SophtronTransaction
from sophsync.store.models import Account

COUNT = 200_000
#: Each timing is the best of this many runs (a fresh account or table each time), for the
#: import path and the raw baselines alike: the machine's noise between runs (10-20 % here)
#: would otherwise decide the ratio.
RUNS = 3
#: One checking account, five years at 200 card purchases a day: about 220,000 transactions.
USERNAME = "bench+accounts=1+years=5+daily=200"

#: The transaction table's columns the raw baselines fill, in order.
COLUMNS = (
    "account_id",
    "source_id",
    "provider_id",
    "previous_ids",
    "fingerprint",
    "amount_minor",
    "currency",
    "date",
    "posted_date",
    "pending",
    "description",
    "merchant",
    "category",
    "check_number",
    "memo",
    "status",
    "deleted",
    "created_at",
    "updated_at",
)


def run(record: Record) -> None:
    rows, start, end = sandbox_rows(COUNT)
    detail = f"{len(rows):,} transactions, one account"
    sqlite_import(record, rows, start, end, detail)
    postgres_import(record, rows, start, end, detail)


def sandbox_rows(count: int) -> tuple[list[SophtronTransaction], dt.date, dt.date]:
    """The newest ``count`` transactions of one sandbox account, read over HTTP with the SDK,
    and the window that holds them (as a sync's window would)."""
    config = SandboxConfig(users={USER_ID: ACCESS_KEY}, seed=1, today=TODAY)
    with (
        SandboxServer(config) as server,
        Client(
            USER_ID,
            ACCESS_KEY,
            base_url=server.url,
            poll_interval=0.001,
            max_poll_interval=0.005,
            timeout=300,
        ) as client,
    ):
        bank = client.get_institution_by_name("Sophtron Bank NoMFA")[0]
        login_id = connect(client, bank.institution_id, USERNAME)
        account = client.get_user_institution_accounts(login_id)[0]
        start = TODAY - dt.timedelta(days=6 * 365)
        rows = client.get_transactions_by_transaction_date(
            account.account_id, start, TODAY + dt.timedelta(days=1)
        )
    dated = sorted(
        (row for row in rows if row.booked_on is not None),
        key=lambda row: row.booked_on or dt.date.min,
    )
    if len(dated) < count:
        raise RuntimeError(f"{USERNAME} gave {len(dated)} transactions, fewer than {count}")
    chosen = dated[-count:]
    first = chosen[0].booked_on
    assert first is not None
    return chosen, first, TODAY + dt.timedelta(days=1)


def new_account(core: Core) -> int:
    who = families.create_family(core, "Bench", f"{uuid.uuid4().hex}@example.com", "bench pw")
    with core.session() as session:
        account = Account(family_id=who.family_id, name="Checking", currency="USD")
        session.add(account)
        session.flush()
        return account.id


def timed_import(
    core: Core, account_id: int, rows: Sequence[SophtronTransaction], start: dt.date, end: dt.date
) -> tuple[float, Any]:
    """Seconds for one import of ``rows`` into the account, committed, as ``sync._read`` runs it."""
    began = time.perf_counter()
    with core.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        counts = import_transactions(session.connection(), account, rows, start, end)
    return time.perf_counter() - began, counts


def raw_rows(
    rows: Sequence[SophtronTransaction], account_id: int, *, sqlite: bool
) -> list[tuple[Any, ...]]:
    """The rows as the store keeps them, ready for a raw insert (not timed)."""
    account = Account(id=account_id, currency="USD", invert_sign=False)
    now = dt.datetime.now(dt.UTC)
    stamp: Any = now.replace(tzinfo=None).isoformat(sep=" ") if sqlite else now
    out = []
    for txn in rows:
        item = Incoming.from_sophtron(txn, account)
        assert item is not None
        day: Any = item.date.isoformat() if sqlite else item.date
        posted: Any = item.posted_date
        if sqlite and posted is not None:
            posted = posted.isoformat()
        out.append(
            (
                account_id,
                None,
                item.provider_id,
                None,
                item.fingerprint,
                item.amount_minor,
                item.currency,
                day,
                posted,
                item.pending,
                item.description,
                item.merchant,
                item.category,
                item.check_number,
                item.memo,
                "active",
                False,
                stamp,
                stamp,
            )
        )
    return out


def report_import(
    record: Record,
    backend: str,
    core: Core,
    rows: Sequence[SophtronTransaction],
    start: dt.date,
    end: dt.date,
    detail: str,
) -> float | None:
    """Import, then re-sync the same rows; returns the first import's rows per second, or
    ``None`` when the database refused the import (recorded as a failure, so that the raw
    baselines still run and the table shows what broke)."""
    imports: list[float] = []
    resyncs: list[float] = []
    for _ in range(RUNS):
        account_id = new_account(core)
        try:
            seconds, counts = timed_import(core, account_id, rows, start, end)
        except DBAPIError as error:
            reason = str(error.orig).splitlines()[0] if error.orig else type(error).__name__
            record(f"import_{backend}", 0, "rows/s", f"{detail}: FAILED, {reason}")
            return None
        if counts.added != len(rows):
            raise RuntimeError(f"{backend}: the import added {counts.added} of {len(rows)} rows")
        imports.append(seconds)
        seconds, counts = timed_import(core, account_id, rows, start, end)
        if counts.unchanged != len(rows):
            left = counts.unchanged
            raise RuntimeError(f"{backend}: the re-sync left {left} of {len(rows)} alone")
        resyncs.append(seconds)
    speed = per_second(len(rows), min(imports))
    record(f"import_{backend}", speed, "rows/s", f"{detail}, fresh account ({spread(imports)})")
    record(
        f"import_{backend}_resync",
        per_second(len(rows), min(resyncs)),
        "rows/s",
        f"{detail}, every row already stored ({spread(resyncs)})",
    )
    return speed


def spread(seconds: Sequence[float]) -> str:
    """``best 6.3 s of 6.3, 6.9, 7.1 s``: the best run, which the rate is computed from, and all."""
    every = ", ".join(f"{value:.1f}" for value in seconds)
    return f"best {min(seconds):.1f} s of {len(seconds)} runs: {every} s"


def sqlite_import(
    record: Record,
    rows: Sequence[SophtronTransaction],
    start: dt.date,
    end: dt.date,
    detail: str,
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        core = Core.open(Settings(data_dir=Path(folder) / "store"), migrate=True)
        try:
            speed = report_import(record, "sqlite", core, rows, start, end, detail)
        finally:
            core.close()

        # The raw baseline: a second fresh store (the same schema and indexes) for each run,
        # one executemany in one transaction, with the engine's own pragmas.
        runs: list[float] = []
        for run in range(RUNS):
            core = Core.open(Settings(data_dir=Path(folder) / f"raw{run}"), migrate=True)
            try:
                account_id = new_account(core)
                path = core.engine.url.database
            finally:
                core.close()
            assert path is not None
            values = raw_rows(rows, account_id, sqlite=True)
            connection = sqlite3.connect(path)
            try:
                for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
                    connection.execute(f"PRAGMA {pragma}")
                insert = (
                    f"INSERT INTO bank_transaction ({', '.join(COLUMNS)}) "  # noqa: S608
                    f"VALUES ({', '.join('?' * len(COLUMNS))})"
                )
                began = time.perf_counter()
                with connection:
                    connection.executemany(insert, values)
                runs.append(time.perf_counter() - began)
            finally:
                connection.close()
        raw = per_second(len(rows), min(runs))
        record(
            "import_sqlite_raw", raw, "rows/s", f"{detail}, sqlite3 executemany ({spread(runs)})"
        )
        if speed is not None:
            record("import_sqlite_ratio", speed / raw, "import/raw", "target: at least 0.5")


def postgres_import(
    record: Record,
    rows: Sequence[SophtronTransaction],
    start: dt.date,
    end: dt.date,
    detail: str,
) -> None:
    with tempfile.TemporaryDirectory() as folder, postgres_database() as url:
        core = Core.open(Settings(data_dir=Path(folder), database_url=url), migrate=True)
        try:
            speed = report_import(record, "postgresql", core, rows, start, end, detail)
            baseline_account = new_account(core)
        finally:
            core.close()

        # The raw baselines: tables like the store's (columns, defaults, indexes, the unique
        # constraint), each filled in one transaction.
        values = raw_rows(rows, baseline_account, sqlite=False)
        columns = ", ".join(COLUMNS)
        with psycopg.connect(url) as connection:

            def fresh_tables() -> None:
                for table in ("raw_copy", "raw_executemany"):
                    connection.execute(f"DROP TABLE IF EXISTS {table}")
                    connection.execute(
                        f"CREATE TABLE {table} (LIKE bank_transaction INCLUDING ALL)"
                    )
                connection.commit()

            def copy() -> None:
                with connection.cursor() as cursor:
                    command = f"COPY raw_copy ({columns}) FROM STDIN"
                    with cursor.copy(command) as writer:
                        for value in values:
                            writer.write_row(value)

            def executemany() -> None:
                with connection.cursor() as cursor:
                    cursor.executemany(
                        f"INSERT INTO raw_executemany ({columns}) "  # noqa: S608
                        f"VALUES ({', '.join(['%s'] * len(COLUMNS))})",
                        values,
                    )

            baselines: list[tuple[str, Callable[[], None], str]] = [
                ("copy", copy, "COPY (psycopg cursor.copy)"),
                ("executemany", executemany, "psycopg executemany"),
            ]
            timings: dict[str, list[float]] = {name: [] for name, _, _ in baselines}
            for _ in range(RUNS):
                fresh_tables()
                for name, load, _ in baselines:
                    began = time.perf_counter()
                    load()
                    connection.commit()
                    timings[name].append(time.perf_counter() - began)
            for name, _, how in baselines:
                raw = per_second(len(values), min(timings[name]))
                record(
                    f"import_postgresql_{name}",
                    raw,
                    "rows/s",
                    f"{detail}, {how} ({spread(timings[name])})",
                )
                if speed is None:
                    continue
                record(
                    f"import_postgresql_ratio_{name}",
                    speed / raw,
                    "import/raw",
                    f"against {how}; target: at least 0.5",
                )
