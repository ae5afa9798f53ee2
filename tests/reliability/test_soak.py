"""Fault soak: many logins synced through a sandbox that fails a good share of its requests.

Every kind of fault the sandbox knows is on at once: 429 with a short ``Retry-After``, 500, 502
and 503, slow answers, connections dropped after the request took effect, and 200s with a
truncated body. Connecting, linking and syncing all meet them; each step that fails temporarily
is tried again, as a person or the job queue would, and the syncs are repeated until every
connection's last run succeeded. Then the store must equal ``/_sandbox/truth`` exactly: no
transaction missing, none twice, no amount, date or pending flag wrong. The world then moves on a
few days (pending rows post, new rows appear) and the same holds after syncing through the same
faults again.

``make test`` runs a bounded soak (50 logins of 3 accounts); ``SOPHSYNC_SOAK=long`` runs a longer
one on PostgreSQL (more logins, more history, more days).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from sophsync.core import credentials, families, sync
from sophsync.core.app import Core
from sophsync.sandbox import FaultSpec, SandboxServer
from sophsync.sophtron import RetryPolicy
from sophsync.store.models import Connection, RunStatus
from tests.conftest import ACCESS_KEY, USER_ID
from tests.core.conftest import Clock
from tests.reliability.conftest import (
    LONG,
    assert_store_equals_truth,
    connect_login,
    latest_runs,
    sandbox_stats,
)

#: Each kind of fault on about one request in fifteen: together a third of all requests fail.
FAULTS = (
    "429=0.06,500=0.05,502=0.05,503=0.05,slow=0.05,drop=0.05,malformed=0.06,"
    "retry-after=0.05,slow-seconds=0.05"
)
LOGINS = 200 if LONG else 50
ACCOUNTS = 3
YEARS = "0.5" if LONG else "0.05"
#: Days the world moves on after the first full sync, one sync round after each step; the
#: world starts on 21 November, so both runs cross into a new month (a new request-usage row).
DAYS = (1, 2, 3, 5, 7) if LONG else (10,)
#: Sync rounds allowed before a connection that never succeeds fails the test.
ROUNDS = 30
THREADS = 4

pytestmark = pytest.mark.timeout(1800 if LONG else 300)

FAST = sync.Poller(interval=0.001, maximum=0.005)


def sync_until_done(core: Core, ids: list[int]) -> tuple[int, Counter[str]]:
    """Sync every connection in rounds until each one's latest run succeeded.

    Returns the rounds needed and the error codes of the failed runs seen on the way."""
    failures: Counter[str] = Counter()
    todo = list(ids)

    def one(connection_id: int) -> str | None:
        run = sync.sync_connection(core, connection_id, trigger="manual", poller=FAST)
        return None if run.status is RunStatus.SUCCEEDED else (run.error_code or "unknown")

    with ThreadPoolExecutor(THREADS) as pool:
        for round_number in range(1, ROUNDS + 1):
            outcomes = list(pool.map(one, todo))
            failures.update(code for code in outcomes if code is not None)
            todo = [cid for cid, code in zip(todo, outcomes, strict=True) if code is not None]
            if not todo:
                return round_number, failures
    raise AssertionError(
        f"{len(todo)} connection(s) still fail after {ROUNDS} sync rounds: {dict(failures)}"
    )


def advance(sandbox: SandboxServer, clock: Clock, days: int) -> None:
    response = httpx.post(f"{sandbox.root}/_sandbox/advance", json={"days": days}, timeout=30)
    response.raise_for_status()
    clock.advance(days=days)


def test_fault_soak_store_equals_truth(
    make_sandbox: Callable[..., SandboxServer],
    make_core: Callable[..., Core],
    clock: Clock,
    record_property: Callable[[str, Any], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The SDK and the engine log every retried fault; thousands of lines say nothing here.
    caplog.set_level(logging.ERROR, logger="sophsync")
    sandbox = make_sandbox(faults=FaultSpec.parse(FAULTS))
    core = make_core(sandbox)
    # The SDK's own retries, with waits short enough for a bounded test (the real policy's
    # half-second back-off would make the soak mostly sleep).
    core.sophtron_options["retry"] = RetryPolicy(attempts=4, backoff=0.02, max_backoff=0.2)
    actor = families.create_family(core, "The Soaks", "soak@example.com", "correct horse battery")
    credentials.save_credentials(core, actor, USER_ID, ACCESS_KEY)

    usernames = [f"soak{n}+accounts={ACCOUNTS}+years={YEARS}" for n in range(LOGINS)]
    with ThreadPoolExecutor(THREADS) as pool:
        views = list(pool.map(lambda name: connect_login(core, actor, name), usernames))
    ids = [view.id for view in views]
    assert len(set(ids)) == LOGINS
    with core.session() as session:
        assert session.scalar(sa.select(sa.func.count(Connection.id))) == LOGINS

    rounds, failures = sync_until_done(core, ids)
    assert set(latest_runs(core).values()) == {RunStatus.SUCCEEDED.value}
    compared = assert_store_equals_truth(core, sandbox)
    report = {"rounds": [rounds], "failed_runs": dict(failures), "rows": [compared]}

    for days in DAYS:
        advance(sandbox, clock, days)
        rounds, failures = sync_until_done(core, ids)
        assert set(latest_runs(core).values()) == {RunStatus.SUCCEEDED.value}
        report["rounds"].append(rounds)
        report["rows"].append(assert_store_equals_truth(core, sandbox))
        for code, count in failures.items():
            report["failed_runs"][code] = report["failed_runs"].get(code, 0) + count

    stats = sandbox_stats(sandbox)
    # The soak proves something only if the faults really happened, every kind of them.
    kinds = {"429", "500", "502", "503", "slow", "drop", "malformed"}
    assert kinds <= set(stats["faults"]), stats["faults"]
    assert sum(stats["faults"].values()) > stats["total"] // 5, stats
    report.update(requests=stats["total"], faults=stats["faults"])
    record_property("soak", report)
    print(f"fault soak: {report}")  # shown with -s: numbers for the docs
