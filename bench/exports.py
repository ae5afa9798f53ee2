"""File exports: 100,000 transactions in four accounts of a SQLite store to each file format,
as ``sophsync export`` writes them (``files.prepare``, then ``files.write_file``)."""

from __future__ import annotations

import datetime as dt
import random
import tempfile
import time
from pathlib import Path

from common import TODAY, Record, per_second
from sqlalchemy import insert

from sophsync.core import families
from sophsync.core.app import Core
from sophsync.exporters import files
from sophsync.settings import Settings
from sophsync.store.models import Account, AccountType, Transaction

COUNT = 100_000
ACCOUNTS = (
    ("Primary Checking", AccountType.DEPOSITORY, 412_345),
    ("High Yield Savings", AccountType.DEPOSITORY, 2_150_000),
    ("Rewards Visa", AccountType.CREDIT_CARD, -123_456),
    ("Store Card", AccountType.CREDIT_CARD, -9_999),
)


def run(record: Record) -> None:
    rng = random.Random(1)  # noqa: S311 - test data, not secrets
    with tempfile.TemporaryDirectory() as folder:
        core = Core.open(Settings(data_dir=Path(folder) / "data"), migrate=True)
        try:
            who = families.create_family(core, "Bench", "bench@example.com", "bench password")
            balance_at = dt.datetime.combine(TODAY, dt.time(12), dt.UTC)
            with core.session() as session:
                accounts = [
                    Account(
                        family_id=who.family_id,
                        name=name,
                        type=kind.value,
                        balance_minor=balance,
                        balance_at=balance_at,
                    )
                    for name, kind, balance in ACCOUNTS
                ]
                session.add_all(accounts)
                session.flush()
                ids = [account.id for account in accounts]
                rows = []
                for i in range(COUNT):
                    day = TODAY - dt.timedelta(days=rng.randint(0, 3 * 365))
                    pending = day > TODAY - dt.timedelta(days=3) and rng.random() < 0.5
                    rows.append(
                        {
                            "account_id": ids[i % len(ids)],
                            "provider_id": f"t{i}",
                            "fingerprint": f"f{i}",
                            "amount_minor": rng.randint(-50_000, 50_000),
                            "currency": "USD",
                            "date": day,
                            "posted_date": None if pending else day + dt.timedelta(days=1),
                            "pending": pending,
                            "description": f"Purchase {rng.randint(0, 999)} & co <shop>",
                            "merchant": f"Merchant {rng.randint(0, 299)}",
                            "category": rng.choice(["Groceries", "Travel", "Dining", None]),
                            "memo": f"memo {i}" if i % 7 == 0 else None,
                        }
                    )
                session.execute(insert(Transaction), rows)
            for fmt in files.FORMATS:
                path = Path(folder) / f"export.{fmt}"
                began = time.perf_counter()
                export = files.prepare(core, who)
                prepared = time.perf_counter() - began
                files.write_file(export, fmt, path)
                seconds = time.perf_counter() - began
                written = len(export.selection.transactions)
                if written != COUNT:
                    raise RuntimeError(f"{fmt}: {written} transactions exported, not {COUNT}")
                size = path.stat().st_size
                record(
                    f"export_{fmt}_seconds",
                    seconds,
                    "s",
                    f"{COUNT:,} transactions, 4 accounts: prepare {prepared:.1f} s + write "
                    f"{seconds - prepared:.1f} s, {size // 1024:,} KiB",
                )
                record(f"export_{fmt}", per_second(COUNT, seconds), "rows/s", f"{fmt} file")
        finally:
            core.close()
