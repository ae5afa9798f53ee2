"""The web app: the transactions pages, HTML and JSON, first and deep pages, at 100,000
transactions."""

from __future__ import annotations

import datetime as dt
import random
import tempfile
from pathlib import Path

import httpx
from common import TODAY, Record, percentile, served, timed
from sqlalchemy import insert

from sophsync.core import accounts, families
from sophsync.core.app import Core
from sophsync.jobs import LocalQueue
from sophsync.settings import Settings
from sophsync.store.models import Account, Transaction
from sophsync.web import create_app


def run(record: Record) -> None:
    web_pages(record)


def web_pages(record: Record, count: int = 100_000) -> None:
    """Latency of the first and of a deep page of transactions, as HTML and as JSON, with
    ``count`` transactions in four accounts on SQLite."""
    rng = random.Random(1)  # noqa: S311 - test data, not secrets
    with tempfile.TemporaryDirectory() as folder:
        core = Core.open(Settings(data_dir=Path(folder)), migrate=True)
        who = families.create_family(core, "Bench", "bench@example.com", "bench password")
        with core.session() as session:
            accounts_ = [Account(family_id=who.family_id, name=f"Account {i}") for i in range(4)]
            session.add_all(accounts_)
            session.flush()
            ids = [a.id for a in accounts_]
            session.execute(
                insert(Transaction),
                [
                    {
                        "account_id": ids[i % 4],
                        "provider_id": f"t{i}",
                        "fingerprint": f"f{i}",
                        "amount_minor": rng.randint(-50_000, 50_000),
                        "currency": "USD",
                        "date": TODAY - dt.timedelta(days=rng.randint(0, 3 * 365)),
                        "description": f"Purchase {rng.randint(0, 999)}",
                        "merchant": f"Merchant {rng.randint(0, 299)}",
                    }
                    for i in range(count)
                ],
            )
        middle = accounts.list_transactions(core, who, limit=1000)[-1].id
        for _ in range(count // 2 // 1000):
            middle = accounts.list_transactions(core, who, after_id=middle, limit=1000)[-1].id
        app = create_app(core, queue=LocalQueue(core))
        with served(app) as url, httpx.Client(base_url=url) as http:
            http.post("/api/v1/session", json={"email": who.email, "password": "bench password"})
            for name, path in (
                ("page_first", "/transactions"),
                ("page_deep", f"/transactions?cursor={middle}"),
                ("page_search", "/transactions?q=merchant+42"),
                ("api_first", "/api/v1/transactions?limit=50"),
                ("api_deep", f"/api/v1/transactions?limit=50&cursor={middle}"),
            ):
                assert http.get(path).status_code == 200, path
                samples = timed(lambda path=path: http.get(path), 50)  # type: ignore[misc]
                for q in (0.5, 0.95):
                    record(
                        f"web_{name}_p{round(q * 100)}",
                        percentile(samples, q) * 1000,
                        "ms",
                        f"GET {path.split('?')[0]} at {count:,} transactions (SQLite)",
                    )
        core.close()
