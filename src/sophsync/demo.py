"""The demo: sophsync's whole flow against an in-process sandbox, narrated on a console.

Starts a local Sophtron with fresh credentials and an embedded SQLite store in a data folder,
creates a family and its admin, saves the Sophtron credentials, connects "Sophtron Bank"
answering every MFA step, links every account, syncs through the job queue, moves the sandbox
clock a week, syncs again, and checks that the local copy equals the sandbox's truth. Needs no
configuration and no network.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from .core import connect, credentials, families, link, quota
from .core.app import Core
from .core.importer import to_decimal
from .exporters import files
from .jobs import LocalQueue, Worker, defer_sync
from .sandbox import SandboxConfig, SandboxServer, new_credentials
from .settings import Settings
from .sophtron import (
    CaptchaPrompt,
    PhoneConfirmationPrompt,
    Prompt,
    SecurityQuestionsPrompt,
    TokenInputPrompt,
    TokenMethodPrompt,
)
from .store.models import Account, SyncRun, Transaction, TxnStatus

DEMO_BANK = "Sophtron Bank"
#: Half a year of history, so that the default window holds all of it.
DEMO_USERNAME = "demo-household+years=0.3"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - a sandbox login, accepted by any test bank
DEMO_ADMIN = "admin@demo.sophsync.invalid"


@dataclass
class DemoResult:
    prompts: list[str] = field(default_factory=list)
    accounts: int = 0
    transactions: int = 0
    runs: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    requests: int = 0
    matches_truth: bool = False
    #: The export files written, and whether writing them again gave the same bytes.
    exports: list[Path] = field(default_factory=list)
    exports_identical: bool = False


def _answer_for(prompt: Prompt, output: Path, console: Console) -> str | list[str] | bool:
    """What a person would type; printed so the flow is visible."""
    if isinstance(prompt, CaptchaPrompt):
        image = output / "captcha.png"
        image.write_bytes(prompt.image_png)
        console.print(
            f"  [bold]Captcha[/]: image saved to {image} ({len(prompt.image_png)} bytes "
            "of PNG); the sandbox accepts any text -> answering 'K7QX2'"
        )
        return "K7QX2"
    if isinstance(prompt, SecurityQuestionsPrompt):
        for question in prompt.questions:
            console.print(f"  [bold]Security question[/]: {question} -> answering 'blue'")
        return ["blue"] * len(prompt.questions)
    if isinstance(prompt, TokenMethodPrompt):
        console.print(
            "  [bold]Where should the bank send a code?[/] "
            + "; ".join(f"[{i}] {label}" for i, label in enumerate(prompt.labels))
            + " -> choosing [0]"
        )
        return "0"
    if isinstance(prompt, TokenInputPrompt):
        console.print(f"  [bold]Enter the {prompt.label}[/] -> '123456'")
        return "123456"
    if isinstance(prompt, PhoneConfirmationPrompt):
        console.print(f"  [bold]Confirm by phone[/]: enter {prompt.code} on the call -> confirmed")
        return True
    raise TypeError(prompt)


def _money(minor: int | None, currency: str) -> str:
    return "-" if minor is None else f"{to_decimal(minor, currency):,.2f} {currency}"


def _accounts_table(core: Core, family_id: int) -> tuple[Table, int]:
    table = Table(title="Accounts in sophsync")
    for column in ("Account", "Type", "Balance", "Available", "Transactions", "Pending"):
        table.add_column(column, justify="left" if column in {"Account", "Type"} else "right")
    total = 0
    with core.session() as session:
        accounts = session.scalars(
            select(Account).where(Account.family_id == family_id).order_by(Account.id)
        ).all()
        for account in accounts:
            active = (Transaction.account_id == account.id) & (
                Transaction.status == TxnStatus.ACTIVE.value
            )
            count = session.scalar(select(func.count()).where(active)) or 0
            pending = session.scalar(select(func.count()).where(active, Transaction.pending)) or 0
            total += count
            table.add_row(
                account.name,
                account.type,
                _money(account.balance_minor, account.currency),
                _money(account.available_minor, account.currency),
                str(count),
                str(pending),
            )
    return table, total


def _runs_table(core: Core) -> tuple[Table, list[tuple[int, int, int, int, int]]]:
    table = Table(title="Sync runs")
    for column in (
        "Run",
        "Trigger",
        "Status",
        "Added",
        "Updated",
        "Unchanged",
        "Removed",
        "Requests",
    ):
        table.add_column(column, justify="left" if column in {"Trigger", "Status"} else "right")
    rows = []
    with core.session() as session:
        for run in session.scalars(select(SyncRun).order_by(SyncRun.id)):
            table.add_row(
                str(run.id),
                run.trigger,
                run.status,
                str(run.added),
                str(run.updated),
                str(run.unchanged),
                str(run.removed),
                str(run.requests),
            )
            rows.append((run.added, run.updated, run.unchanged, run.removed, run.requests))
    return table, rows


def local_copy(core: Core) -> dict[str, set[tuple[str, int, bool]]]:
    """Every active transaction by account name: (provider id, amount in cents, pending)."""
    with core.session() as session:
        rows = session.execute(
            select(
                Account.name, Transaction.provider_id, Transaction.amount_minor, Transaction.pending
            )
            .join(Account, Transaction.account_id == Account.id)
            .where(Transaction.status == TxnStatus.ACTIVE.value)
        ).all()
    copy: dict[str, set[tuple[str, int, bool]]] = {}
    for name, provider_id, amount, pending in rows:
        copy.setdefault(name, set()).add((provider_id or "", amount, pending))
    return copy


def truth_copy(logins: Sequence[dict[str, Any]]) -> dict[str, set[tuple[str, int, bool]]]:
    """The same view of the sandbox's ``/_sandbox/truth``."""
    return {
        account["AccountName"]: {
            (t["TransactionID"], round(t["Amount"] * 100), t["Status"] == "Pending")
            for t in account["Transactions"]
        }
        for login in logins
        for account in login["Accounts"]
    }


#: File name of each export format in the demo's output folder.
_EXPORT_NAMES = {
    "csv": "household.csv",
    "ofx": "household.ofx",
    "qif": "household.qif",
    "beancount": "household.beancount",
    "ledger": "household.journal",
}


def _export_all(core: Core, admin: families.Actor, folder: Path) -> tuple[list[Path], bool]:
    """Every file format, written twice: the second time must give the same bytes."""
    written: list[Path] = []
    identical = True
    for fmt, name in _EXPORT_NAMES.items():
        path = folder / name
        files.write_file(files.prepare(core, admin), fmt, path)
        first = path.read_bytes()
        files.write_file(files.prepare(core, admin), fmt, path)
        identical = identical and path.read_bytes() == first
        written.append(path)
    return written, identical


def run_demo(
    console: Console,
    *,
    output: Path,
    seed: int = 0,
    today: dt.date | None = None,
    job_seconds: float = 0.1,
) -> DemoResult:
    """Run the whole flow; raises a :class:`~sophsync.errors.SophsyncError` if a step fails."""
    output.mkdir(parents=True, exist_ok=True)
    result = DemoResult()
    user_id, access_key = new_credentials()
    config = SandboxConfig(
        users={user_id: access_key}, seed=seed, today=today, job_seconds=job_seconds
    )
    with SandboxServer(config) as server:
        world_day = server.app.state.today
        clock = [dt.datetime.combine(world_day, dt.time(12), dt.UTC)]
        data_dir = output / "data"
        for stale in data_dir.glob("sophsync.db*"):
            stale.unlink()
        settings = Settings(data_dir=data_dir, sophtron_base_url=server.url)
        core = Core.open(settings, clock=lambda: clock[0], poll_interval=0.1, max_poll_interval=0.5)
        try:
            console.rule("sophsync demo: a household's bank sync against the local sandbox")
            console.print(
                f"Sandbox at {server.url} (world date {world_day}, seed {seed}); "
                f"store: {settings.url}"
            )
            admin = families.create_family(core, "Demo family", DEMO_ADMIN, "demo-admin-password")
            console.print(f"Family 'Demo family' created with admin {DEMO_ADMIN}.")
            status = credentials.save_credentials(core, admin, user_id, access_key)
            console.print(
                f"Sophtron credentials verified and saved (encrypted); customer "
                f"{status.customer_id}."
            )

            console.rule(f"Connect {DEMO_BANK}")
            bank = next(
                b
                for b in connect.search_institutions(core, admin, DEMO_BANK)
                if b.institution_name == DEMO_BANK
            )
            view = connect.start_connection(
                core,
                admin,
                bank.institution_id,
                DEMO_USERNAME,
                DEMO_PASSWORD,
                institution_name=DEMO_BANK,
            )
            while True:
                view = connect.wait_for_connection(core, view.id, interval=0.1, timeout=60)
                if view.prompt is None:
                    break
                result.prompts.append(view.prompt.kind)
                view = connect.answer_challenge(
                    core, admin, view.id, _answer_for(view.prompt, output, console)
                )
            console.print(f"[green]{view.message}[/] ({len(result.prompts)} MFA steps answered)")

            linked = link.link_all(core, admin, view.id)
            result.accounts = len(linked)
            console.print(
                f"Linked {len(linked)} accounts to new local accounts "
                f"({settings.history_days} days of history)."
            )

            queue = LocalQueue(core)
            worker = Worker(core, queue)
            defer_sync(queue, view.id)
            worker.run_until_idle()

            console.rule("A week later")
            httpx.post(f"{server.root}/_sandbox/advance", json={"days": 7}).raise_for_status()
            clock[0] += dt.timedelta(days=7)
            defer_sync(queue, view.id)
            worker.run_until_idle()

            table, result.transactions = _accounts_table(core, admin.family_id)
            console.print(table)
            runs, result.runs = _runs_table(core)
            console.print(runs)

            console.rule("Outputs, from the local copy only")
            exports = output / "exports"
            exports.mkdir(exist_ok=True)
            result.exports, result.exports_identical = _export_all(core, admin, exports)
            console.print(
                f"Wrote {', '.join(path.name for path in result.exports)} to {exports}; "
                f"exported again: {'the same bytes' if result.exports_identical else 'DIFFERENT'}."
            )

            truth = httpx.get(f"{server.root}/_sandbox/truth").json()
            result.matches_truth = local_copy(core) == truth_copy(truth["Logins"])
            result.requests = quota.usage(core, admin.family_id)
            console.rule("Done")
            verdict = "[green]equals[/]" if result.matches_truth else "[red]DIFFERS FROM[/]"
            console.print(
                f"{result.accounts} accounts, {result.transactions} transactions, "
                f"{result.requests} Sophtron requests this month. The local copy "
                f"{verdict} the sandbox's truth."
            )
        finally:
            core.close()
    return result
