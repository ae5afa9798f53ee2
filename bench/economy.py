"""Request economy: the Sophtron requests one incremental sync of a login with five accounts
spends when the bank's refresh job takes 10 s, with the poller ``sophsync sync`` uses, against
the fewest the API allows and against a fixed 4-second poller.

The fewest: one ``RefreshUserInstitution``, one ``GetJobInformationByID`` that already sees the
job done, one ``GetUserInstitutionAccounts`` for the balances and one
``GetTransactionsByTransactionDate`` per account: accounts + 3 (8 for five accounts). Sophtron
has no way to be told when a job ends, so every job read before the one that sees it done is
the price of waiting.

A sandbox job step takes ``job_seconds``; a refresh without MFA has two steps (log in, download),
so ``job-seconds=5`` in the bank username makes each refresh take 10 s. The sandbox counts every
API request it answers (``/_sandbox/stats``, reset before each sync); the sync run records the
requests it metered itself, and both are reported.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import httpx
from common import ACCESS_KEY, TODAY, USER_ID, Record

from sophsync.core import connect, credentials, families, link, sync
from sophsync.core.app import Core
from sophsync.sandbox import SandboxConfig, SandboxServer
from sophsync.settings import Settings
from sophsync.store.models import ConnectionStatus, RunStatus

ACCOUNTS = 5
JOB_SECONDS = 5.0
REFRESH_SECONDS = 2 * JOB_SECONDS
USERNAME = f"economy+accounts={ACCOUNTS}+years=1+job-seconds={JOB_SECONDS:g}"
MINIMUM = ACCOUNTS + 3
#: The sandbox's name for the job reads in its counters.
JOB_READS = "POST /api/Job/GetJobInformationByID"


class Clock:
    """The core's clock: on the sandbox's world date, ticking in real time, moved a day at a
    time (the poller learns how long refreshes take from it)."""

    def __init__(self) -> None:
        self.start = dt.datetime.combine(TODAY, dt.time(12), dt.UTC)
        self.began = time.monotonic()
        self.days = 0

    def __call__(self) -> dt.datetime:
        ticked = dt.timedelta(days=self.days, seconds=time.monotonic() - self.began)
        return self.start + ticked


def run(record: Record) -> None:
    clock = Clock()
    config = SandboxConfig(users={USER_ID: ACCESS_KEY}, seed=1, today=TODAY)
    with (
        tempfile.TemporaryDirectory() as folder,
        SandboxServer(config) as server,
        httpx.Client(base_url=server.root, timeout=30) as admin,
    ):
        core = Core.open(
            Settings(data_dir=Path(folder), sophtron_base_url=server.url),
            migrate=True,
            clock=clock,
        )
        try:
            who = families.create_family(core, "Bench", "bench@example.com", "bench password")
            credentials.save_credentials(core, who, USER_ID, ACCESS_KEY)
            bank = next(
                item
                for item in connect.search_institutions(core, who, "Sophtron Bank NoMFA")
                if item.institution_name == "Sophtron Bank NoMFA"
            )
            view = connect.start_connection(core, who, bank.institution_id, USERNAME, "pw")
            view = connect.wait_for_connection(core, view.id, interval=0.5, timeout=60)
            if view.status != ConnectionStatus.CONNECTED:
                raise RuntimeError(f"The bench login did not connect: {view.status}")
            linked = link.link_all(core, who, view.id, history_days=30)
            if len(linked) != ACCOUNTS:
                raise RuntimeError(f"{len(linked)} accounts linked, not {ACCOUNTS}")
            # The initial sync right after connecting needs no refresh: the data is fresh.
            first = sync.sync_connection(core, view.id)
            if first.status != RunStatus.SUCCEEDED:
                raise RuntimeError(f"The initial sync {first.status}: {first.error}")

            default = "sync.Poller() as `sophsync sync` uses it"
            for name, poller, how in (
                ("default", sync.Poller(), f"{default}, the first sync after connecting"),
                ("default_next", sync.Poller(), f"{default}, the sync after that"),
                (
                    "fixed_4s",
                    sync.Poller(interval=4, maximum=4, learn=False),
                    "a job read every 4 s",
                ),
            ):
                # A day later: the data is stale, so the sync refreshes at the bank.
                clock.days += 1
                admin.post("/_sandbox/advance", json={"days": 1}).raise_for_status()
                admin.delete("/_sandbox/stats").raise_for_status()
                began = time.perf_counter()
                result = sync.sync_connection(core, view.id, poller=poller)
                seconds = time.perf_counter() - began
                if result.status != RunStatus.SUCCEEDED:
                    raise RuntimeError(f"The {name} sync {result.status}: {result.error}")
                stats = admin.get("/_sandbox/stats").json()
                seen = sum(sum(counts.values()) for counts in stats["routes"].values())
                jobs = sum(stats["routes"].get(JOB_READS, {}).values())
                if jobs < 1:
                    raise RuntimeError(f"No {JOB_READS} among {sorted(stats['routes'])}")
                if seen != result.requests:
                    raise RuntimeError(
                        f"The sandbox saw {seen} requests, the run {result.requests}"
                    )
                record(
                    f"requests_sync_{name}",
                    seen,
                    "requests",
                    f"{how}: {jobs} job reads, {seconds:.1f} s; {ACCOUNTS} accounts, "
                    f"{REFRESH_SECONDS:g} s refresh; target at most {MINIMUM}",
                )
                record(f"requests_sync_{name}_seconds", seconds, "s", f"wall time, {how}")
            record(
                "requests_sync_minimum",
                MINIMUM,
                "requests",
                "refresh + 1 job read + accounts + 1 transactions read per account",
            )
        finally:
            core.close()
