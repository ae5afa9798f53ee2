"""What the benchmarks share: the sandbox's credentials and date, timing and percentiles, a
connect flow, and an ASGI app served on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn

from sophsync.sophtron import Client, JobState

#: ``record(name, value, unit, detail)``: one row of the results table and of results.json.
Record = Callable[[str, float, str, str], None]

USER_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
ACCESS_KEY = "c2FuZGJveC1zZWNyZXQta2V5LTAxMjM0NTY3ODlhYmM="
TODAY = dt.date(2026, 11, 21)
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


#: The PostgreSQL server the benchmarks create their own databases on.
POSTGRES = os.environ.get(
    "SOPHSYNC_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def postgres_database(scheme: str = "postgresql") -> Iterator[str]:
    """A new database on :data:`POSTGRES` for one run (its URL, with ``scheme``), dropped
    afterwards whatever happens."""
    name = f"sophsync_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        server = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", f"{scheme}://", 1)
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_until_up(url: str, process: subprocess.Popen[bytes], what: str, seconds: float) -> None:
    """Wait until ``url`` answers 200, or fail when ``process`` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) that process ``pid`` has used so far, read from Linux's
    ``/proc/PID/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (name) ": fields from 3 on
    ticks = int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15
    return ticks / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen[bytes], seconds: float) -> None:
    """Terminate ``process``; kill it if it has not exited within ``seconds``."""
    process.terminate()
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
