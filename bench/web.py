"""The web app at 100,000 transactions: the transactions pages, HTML and JSON, first and deep
pages, one request at a time; then the dashboard and the first page of the transactions API
under concurrent load, served by ``sophsync serve`` in its own process (SQLite, then
PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from common import (
    TODAY,
    Record,
    cpu_seconds,
    per_second,
    percentile,
    postgres_database,
    served,
    stop,
    timed,
    wait_until_up,
)
from sqlalchemy import insert, text

from sophsync.core import accounts, families, tokens
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.jobs import LocalQueue
from sophsync.settings import Settings
from sophsync.store.models import Account, Transaction
from sophsync.web import create_app


def run(record: Record) -> None:
    web_pages(record)
    web_load(record)


def fill(core: Core, count: int) -> Actor:
    """A family with ``count`` transactions spread over four accounts and three years."""
    rng = random.Random(1)  # noqa: S311 - test data, not secrets
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
    return who


def web_pages(record: Record, count: int = 100_000) -> None:
    """Latency of the first and of a deep page of transactions, as HTML and as JSON, with
    ``count`` transactions in four accounts on SQLite."""
    with tempfile.TemporaryDirectory() as folder:
        core = Core.open(Settings(data_dir=Path(folder)), migrate=True)
        who = fill(core, count)
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


#: Concurrent clients of the load generator (a light load, then a busy household's office), and
#: the requests each page gets at each load.
CLIENTS = (4, 16)
REQUESTS = 800
#: A page still loading after this long is recorded as far as it got.
LOAD_SECONDS = 60.0


def web_load(record: Record, count: int = 100_000) -> None:
    """The dashboard and the first page of ``GET /api/v1/transactions`` under ``CLIENTS``
    concurrent clients, with ``count`` transactions: p50 / p95 latency and throughput.

    The app runs as ``sophsync serve`` in its own process, as deployed, so that the load
    generator (asyncio and httpx here) does not share an interpreter with the server; on
    SQLite the embedded worker idles in the server process as it does in production."""
    with tempfile.TemporaryDirectory() as folder:
        load_on(record, "sqlite", Path(folder), f"sqlite:///{Path(folder) / 'sophsync.db'}", count)
    with tempfile.TemporaryDirectory() as folder, postgres_database() as url:
        load_on(record, "postgresql", Path(folder), url, count)


def load_on(record: Record, backend: str, data_dir: Path, url: str, count: int) -> None:
    core = Core.open(Settings(data_dir=data_dir, database_url=url), migrate=True)
    try:
        who = fill(core, count)
        token = tokens.create_token(core, who, "bench")[1]
        if backend == "postgresql":
            # Fresh statistics, as autovacuum has them soon after a large load: without them
            # the planner sorts every transaction for a page of 50 (100 ms instead of 0.2 ms).
            with core.engine.connect() as connection:
                connection.execute(text("ANALYZE"))
                connection.commit()
    finally:
        core.close()
    with serve_process(data_dir, url, embedded=backend == "sqlite") as (root, server):
        session = httpx.post(
            f"{root}/api/v1/session", json={"email": who.email, "password": "bench password"}
        )
        session.raise_for_status()
        for name, path, headers, cookies in (
            ("dashboard", "/", {}, session.cookies),
            (
                "api_first",
                "/api/v1/transactions?limit=50",
                {"authorization": f"Bearer {token}"},
                httpx.Cookies(),
            ),
        ):
            for clients in CLIENTS:
                samples, seconds, cpu = asyncio.run(
                    load(root, path, headers, cookies, clients, server.pid)
                )
                where = f"{clients} concurrent clients, {count:,} transactions ({backend})"
                prefix = f"web_load_{backend}_{name}_c{clients}"
                for q in (0.5, 0.95):
                    record(
                        f"{prefix}_p{round(q * 100)}",
                        percentile(samples, q) * 1000,
                        "ms",
                        f"GET {path.split('?')[0]}, {where}",
                    )
                record(
                    f"{prefix}_rate",
                    per_second(len(samples), seconds),
                    "req/s",
                    f"{len(samples)} requests in {seconds:.1f} s, {where}",
                )
                record(
                    f"{prefix}_server_cpu",
                    cpu / len(samples) * 1000,
                    "ms/req",
                    f"the server's CPU time per request (user + system), {where}",
                )


async def load(
    root: str,
    path: str,
    headers: dict[str, str],
    cookies: httpx.Cookies,
    clients: int,
    server: int,
) -> tuple[list[float], float, float]:
    """``REQUESTS`` GETs of ``path`` from ``clients`` clients at once, each sending its next
    request as soon as its last one is answered: the latency of each, the time taken and the
    CPU seconds the ``server`` process spent meanwhile."""
    samples: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=root, headers=headers, cookies=cookies, limits=limits, timeout=30
    ) as http:
        for _ in range(clients):  # warm: one connection per client, caches filled
            response = await http.get(path)
            assert response.status_code == 200, (path, response.status_code)
        remaining = REQUESTS
        cpu_before = cpu_seconds(server)
        start = time.perf_counter()
        deadline = start + LOAD_SECONDS

        async def client() -> None:
            nonlocal remaining
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                began = time.perf_counter()
                response = await http.get(path)
                samples.append(time.perf_counter() - began)
                assert response.status_code == 200, (path, response.status_code)

        await asyncio.gather(*(client() for _ in range(clients)))
        return samples, time.perf_counter() - start, cpu_seconds(server) - cpu_before


@contextlib.contextmanager
def serve_process(
    data_dir: Path, url: str, *, embedded: bool
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``sophsync serve`` on a free port of 127.0.0.1 in its own process: its root URL and the
    process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPHSYNC_", "SOPHTRON_"))}
    env.update(SOPHSYNC_DATA_DIR=str(data_dir), SOPHSYNC_DATABASE_URL=url)
    command = [sys.executable, "-m", "sophsync", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), *([] if embedded else ["--no-worker"])]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    root = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{root}/healthz", process, "sophsync serve", 60)
        yield root, process
    finally:
        stop(process, 30)
