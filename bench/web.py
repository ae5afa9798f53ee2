"""The web app at 100,000 transactions: the transactions pages, HTML and JSON, first and deep
pages, one request at a time; then the dashboard and the first page of the transactions API
under concurrent load from wrk, served by ``sophsync serve`` in processes of its own, one and
then two, and the API page by one process with each of several ``--threads`` (SQLite, then
PostgreSQL)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
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


#: Concurrent clients of the load generator (a light load, then a busy household's office).
CLIENTS = (4, 16)
#: Web processes of ``sophsync serve --workers``: one, then one per CPU core of this machine.
WEB_PROCESSES = (1, 2)
#: ``sophsync serve --threads`` of one process, each measured on the API page with the most
#: clients: what the default (4) was chosen from. 40 is what a process ran before the option.
THREADS = (1, 2, 4, 8, 40)
#: Each page is loaded for this long at each load, after a second to warm up.
LOAD_SECONDS = 5
#: The load generator: wrk, written in C, so that the load it makes takes little of the CPU the
#: server needs (an asyncio and httpx client spent more per request than the server did).
WRK = "wrk"
WRK_REPORT = Path(__file__).with_name("wrk_report.lua")


def web_load(record: Record, count: int = 100_000) -> None:
    """The dashboard and the first page of ``GET /api/v1/transactions`` under ``CLIENTS``
    concurrent clients, with ``count`` transactions, served by one process and then by
    ``--workers 2``: p50 / p95 latency, throughput and the server's CPU time per request. Then
    the API page with the most clients, served by one process with each of ``THREADS``.

    The app runs as ``sophsync serve`` in its own processes, as deployed; each client of
    ``wrk`` sends its next request as soon as its last one is answered. On SQLite the embedded
    worker idles in the server process as it does in production."""
    if shutil.which(WRK) is None:
        raise SystemExit("bench web needs wrk, the HTTP load generator: apt-get install wrk")
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
    for processes in WEB_PROCESSES:
        serving = serve_process(data_dir, url, embedded=backend == "sqlite", workers=processes)
        with serving as (root, server):
            session = httpx.post(
                f"{root}/api/v1/session", json={"email": who.email, "password": "bench password"}
            )
            session.raise_for_status()
            cookie = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
            for name, path, header in (
                ("dashboard", "/", f"Cookie: {cookie}"),
                ("api_first", "/api/v1/transactions?limit=50", f"Authorization: Bearer {token}"),
            ):
                key, value = header.split(": ", 1)
                answer = httpx.get(f"{root}{path}", headers={key: value})
                assert answer.status_code == 200, (path, answer.status_code)  # not a redirect
                # One process keeps the names of earlier results; more are named by their count.
                named, served_by = ("", "one process")
                if processes > 1:
                    named, served_by = (f"_w{processes}", f"--workers {processes}")
                for clients in CLIENTS:
                    report(
                        record,
                        f"web_load_{backend}_{name}{named}_c{clients}",
                        f"GET {path.split('?')[0]}, {clients} concurrent clients, {count:,} "
                        f"transactions ({backend}, {served_by})",
                        load(f"{root}{path}", header, clients, server.pid),
                    )
    clients = max(CLIENTS)
    for threads in THREADS:
        serving = serve_process(data_dir, url, embedded=backend == "sqlite", threads=threads)
        with serving as (root, server):
            report(
                record,
                f"web_load_{backend}_api_first_t{threads}_c{clients}",
                f"GET /api/v1/transactions, {clients} concurrent clients, {count:,} transactions "
                f"({backend}, one process, --threads {threads})",
                load(
                    f"{root}/api/v1/transactions?limit=50",
                    f"Authorization: Bearer {token}",
                    clients,
                    server.pid,
                ),
            )


def report(record: Record, prefix: str, what: str, result: dict[str, float]) -> None:
    for q in (50, 95):
        record(f"{prefix}_p{q}", result[f"p{q}_us"] / 1000, "ms", what)
    seconds = result["duration_us"] / 1e6
    record(
        f"{prefix}_rate",
        per_second(int(result["requests"]), seconds),
        "req/s",
        f"{result['requests']:,.0f} requests in {seconds:.1f} s, {what}",
    )
    record(
        f"{prefix}_server_cpu",
        result["cpu"] / result["requests"] * 1000,
        "ms/req",
        f"the server's CPU time per request (its processes, user + system), {what}",
    )


def load(url: str, header: str, clients: int, server: int) -> dict[str, float]:
    """``wrk`` with ``clients`` connections on ``url`` for ``LOAD_SECONDS`` (after a second's
    warm-up): its report, and in ``cpu`` the CPU seconds the ``server`` process and its
    children spent meanwhile. Any error or answer outside 2xx and 3xx fails the run (wrk counts
    those; :func:`load_on` first checks that the page answers 200, not a redirect)."""
    command = [WRK, "-t1", f"-c{clients}", "--timeout", "30s", "-H", header, "-s", str(WRK_REPORT)]
    wrk([*command, "-d1s", url])
    before = tree_cpu_seconds(server)
    report = wrk([*command, f"-d{LOAD_SECONDS}s", url])
    report["cpu"] = tree_cpu_seconds(server) - before
    assert report["errors"] == 0, (url, report)
    return report


def wrk(command: list[str]) -> dict[str, float]:
    """Run wrk; the JSON line ``wrk_report.lua`` printed."""
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603
    line = next(line for line in out.splitlines() if line.startswith("{"))
    return dict(json.loads(line))


def tree_cpu_seconds(pid: int) -> float:
    """CPU time used so far by process ``pid`` and its children (``serve --workers``' web
    processes), from Linux's ``/proc``."""
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return cpu_seconds(pid) + sum(tree_cpu_seconds(child) for child in children)


@contextlib.contextmanager
def serve_process(
    data_dir: Path, url: str, *, embedded: bool, workers: int = 1, threads: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``sophsync serve --workers WORKERS [--threads THREADS]`` on a free port of 127.0.0.1 in
    processes of its own: its root URL and the (first) process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPHSYNC_", "SOPHTRON_"))}
    env.update(SOPHSYNC_DATA_DIR=str(data_dir), SOPHSYNC_DATABASE_URL=url)
    command = [sys.executable, "-m", "sophsync", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    command += [] if threads is None else ["--threads", str(threads)]
    command += [] if embedded else ["--no-worker"]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    root = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{root}/healthz", process, "sophsync serve", 60)
        yield root, process
    finally:
        stop(process, 30)
