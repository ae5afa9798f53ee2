"""sophsync benchmarks: prints a table and writes bench/results.json.

Measures the SDK and the sandbox on this machine: request signing, parsing Sophtron's
transaction payloads, request latency against the sandbox over real HTTP on 127.0.0.1, a whole
connect-with-MFA flow, and the sandbox's world generation; then the web app's transactions
pages (HTML and JSON, first and deep pages) at 100,000 transactions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

from sophsync.core import accounts, families
from sophsync.core.app import Core
from sophsync.jobs import LocalQueue
from sophsync.sandbox import SandboxConfig, SandboxServer
from sophsync.sandbox.catalogue import TEST_BANKS
from sophsync.sandbox.world import LoginData, LoginOptions
from sophsync.settings import Settings
from sophsync.sophtron import Client, JobState
from sophsync.sophtron import _calls as calls
from sophsync.sophtron.auth import sign
from sophsync.store.models import Account, Transaction
from sophsync.web import create_app

USER_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
ACCESS_KEY = "c2FuZGJveC1zZWNyZXQta2V5LTAxMjM0NTY3ODlhYmM="
TODAY = dt.date(2026, 11, 21)
RESULTS = Path(__file__).with_name("results.json")
ANSWERS: dict[str, Any] = {
    "captcha": "K7QX2",
    "security_questions": ["blue"],
    "token_method": "0",
    "token_input": "123456",
    "phone_confirmation": True,
}


def per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(function: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def connect(client: Client, institution_id: str, username: str) -> str:
    tracker = client.create_user_institution(institution_id, username, "pw")
    status = client.wait_for_job(tracker.job_id)
    while status.state is JobState.NEEDS_INPUT and status.prompt is not None:
        answer = ANSWERS[status.prompt.kind]
        if status.prompt.kind == "security_questions":
            answer = ["blue"] * len(status.prompt.questions)  # type: ignore[union-attr]
        client.answer_prompt(tracker.job_id, status.prompt, answer)
        status = client.wait_for_job(tracker.job_id)
    assert tracker.login_id is not None
    return tracker.login_id


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free port of 127.0.0.1, in a thread."""
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


def web_pages(record: Callable[[str, float, str, str], None], count: int = 100_000) -> None:
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


def main() -> None:
    results: list[dict[str, Any]] = []

    def record(name: str, value: float, unit: str, detail: str) -> None:
        results.append(
            {"benchmark": name, "value": round(value, 3), "unit": unit, "detail": detail}
        )

    # 1. Signing.
    count = 50_000
    start = time.perf_counter()
    for index in range(count):
        sign(USER_ID, ACCESS_KEY, "POST", f"https://api.sophtron.com/api/Job/Get{index}")
    record(
        "sign",
        per_second(count, time.perf_counter() - start),
        "signatures/s",
        f"{count} FIApiAUTH headers",
    )

    config = SandboxConfig(users={USER_ID: ACCESS_KEY}, seed=1, today=TODAY)
    with (
        SandboxServer(config) as server,
        Client(
            USER_ID, ACCESS_KEY, base_url=server.url, poll_interval=0.001, max_poll_interval=0.005
        ) as client,
    ):
        bank = client.get_institution_by_name("Sophtron Bank")[0]

        # 2. A whole connect flow with four MFA steps.
        flows = timed(lambda: connect(client, bank.institution_id, f"b-{uuid.uuid4()}"), 10)
        record(
            "connect_flow_p50",
            statistics.median(flows) * 1000,
            "ms",
            "Sophtron Bank: login, captcha, question, token method, token, success",
        )

        # 3. Request latency over HTTP.
        login_id = connect(client, bank.institution_id, "latency+daily=3+years=3")
        account = client.get_user_institution_accounts(login_id)[0]
        job = client.refresh_user_institution(login_id)
        reads = timed(lambda: client.get_job_information_by_id(job.job_id), 300)
        record("job_read_p50", percentile(reads, 0.5) * 1000, "ms", "GetJobInformationByID")
        record("job_read_p95", percentile(reads, 0.95) * 1000, "ms", "GetJobInformationByID")
        start_day = TODAY - dt.timedelta(days=3 * 365)
        rows = client.get_transactions_by_transaction_date(account.account_id, start_day, TODAY)
        pages = timed(
            lambda: client.get_transactions_by_transaction_date(
                account.account_id, start_day, TODAY
            ),
            20,
        )
        record(
            "transactions_3y_p50",
            percentile(pages, 0.5) * 1000,
            "ms",
            f"GetTransactionsByTransactionDate, {len(rows)} rows",
        )

        # 4. Parsing a large transactions payload.
        payload = server.app.transactions_in(
            server.app.state.login(USER_ID, login_id),
            server.app.state.login(USER_ID, login_id).data.accounts[0],
            start_day,
            TODAY,
            v2=False,
        )
        import simplejson

        text = simplejson.dumps(payload, use_decimal=True)
        call = calls.get_transactions_by_transaction_date(
            client, account.account_id, start_day, TODAY
        )
        reply = calls.Reply(200, text, call.route)
        parse = timed(lambda: call.parse(reply), 5)
        record(
            "parse_transactions",
            per_second(len(payload), statistics.median(parse)),
            "transactions/s",
            f"{len(payload)} rows, {len(text) // 1024} KiB of JSON",
        )

    # 5. World generation.
    institution = TEST_BANKS[1]
    start = time.perf_counter()
    generated = 0
    for index in range(20):
        login = LoginData(
            str(uuid.uuid4()),
            1,
            institution,
            f"user{index}",
            LoginOptions.parse(f"user{index}"),
            TODAY,
        )
        login.extend_to(TODAY)
        generated += sum(len(a.txns) for a in login.accounts)
    elapsed = time.perf_counter() - start
    record(
        "world_generation",
        per_second(generated, elapsed),
        "transactions/s",
        f"20 logins x 6 accounts x 2 years, {generated} transactions",
    )

    # 6. The transactions pages at 100,000 transactions.
    web_pages(record)

    machine = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "command": "make bench",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    RESULTS.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    table = Table(title=f"sophsync benchmarks ({machine['platform']}, {machine['cpus']} CPUs)")
    for column in ("Benchmark", "Value", "Unit", "Detail"):
        table.add_column(column, justify="right" if column == "Value" else "left")
    for row in results:
        table.add_row(row["benchmark"], f"{row['value']:,.3f}", row["unit"], row["detail"])
    Console().print(table)
    print(f"Wrote {RESULTS}")  # noqa: T201


if __name__ == "__main__":
    main()
