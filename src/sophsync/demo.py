"""The demo: a full Sophtron flow against an in-process sandbox, narrated on a console.

Starts a sandbox with fresh credentials, then uses the SDK as an application would: verify the
credentials, search an institution, log in and answer every MFA prompt, list the accounts and
their transactions, move the sandbox clock and refresh, and do the same through the v2 customer
API. Needs no configuration and no network.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from .sandbox import SandboxConfig, SandboxServer, new_credentials
from .sophtron import (
    Account,
    CaptchaPrompt,
    Client,
    JobState,
    JobStatus,
    PhoneConfirmationPrompt,
    Prompt,
    SecurityQuestionsPrompt,
    TokenInputPrompt,
    TokenMethodPrompt,
)

DEMO_BANK = "Sophtron Bank"
DEMO_USERNAME = "demo-household"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - a sandbox login, accepted by any test bank


@dataclass
class DemoResult:
    prompts: list[str] = field(default_factory=list)
    accounts: int = 0
    transactions: int = 0
    new_after_refresh: int = 0
    v2_accounts: int = 0
    requests: int = 0


def _money(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return "-"
    return f"{amount:,.2f} {currency}"


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


def _connect(
    client: Client, institution_id: str, output: Path, console: Console, result: DemoResult
) -> str:
    tracker = client.create_user_institution(institution_id, DEMO_USERNAME, DEMO_PASSWORD)
    console.print(f"Login started: job {tracker.job_id}")
    status: JobStatus = client.wait_for_job(tracker.job_id)
    while status.state is JobState.NEEDS_INPUT and status.prompt is not None:
        result.prompts.append(status.prompt.kind)
        client.answer_prompt(
            tracker.job_id, status.prompt, _answer_for(status.prompt, output, console)
        )
        status = client.wait_for_job(tracker.job_id)
    console.print(f"[green]{status.message}[/] ({len(result.prompts)} MFA steps answered)")
    assert tracker.login_id is not None
    return tracker.login_id


def _accounts_table(accounts: list[Account]) -> Table:
    table = Table(title="Accounts found")
    for column in ("Account", "Type", "Kind", "Number", "Balance", "Available", "Due"):
        table.add_column(column, justify="right" if column in {"Balance", "Available"} else "left")
    for account in accounts:
        table.add_row(
            account.account_name or "",
            account.account_type or "",
            account.kind.value,
            f"...{account.mask}",
            _money(account.balance, account.currency),
            _money(account.available_balance, account.currency),
            account.due_date.isoformat() if account.due_date else "",
        )
    return table


def run_demo(
    console: Console,
    *,
    output: Path,
    seed: int = 0,
    today: dt.date | None = None,
    job_seconds: float = 0.1,
) -> DemoResult:
    """Run the whole flow; raises a :class:`~sophsync.sophtron.SophtronError` if any step fails."""
    output.mkdir(parents=True, exist_ok=True)
    user_id, access_key = new_credentials()
    config = SandboxConfig(
        users={user_id: access_key}, seed=seed, today=today, job_seconds=job_seconds
    )
    result = DemoResult()
    with (
        SandboxServer(config) as server,
        Client(
            user_id, access_key, base_url=server.url, poll_interval=0.1, max_poll_interval=0.5
        ) as client,
    ):
        console.rule("sophsync demo: the Sophtron SDK against the local sandbox")
        console.print(f"Sandbox at {server.url} (world date {server.app.state.today}, seed {seed})")
        console.print(f"Credentials check: {client.health_check_auth()!r}")

        banks = client.get_institution_by_name("sophtron bank")
        console.print(
            f"Search 'sophtron bank': {len(banks)} institutions: "
            + ", ".join(b.institution_name or "?" for b in banks)
        )
        bank = next(b for b in banks if b.institution_name == DEMO_BANK)

        console.rule(f"Connect to {bank.institution_name}")
        login_id = _connect(client, bank.institution_id, output, console, result)

        accounts = client.get_user_institution_accounts(login_id)
        result.accounts = len(accounts)
        console.print(_accounts_table(accounts))

        today_ = server.app.state.today
        start = today_ - dt.timedelta(days=90)
        counts = Table(title=f"Transactions {start} .. {today_}")
        for column in ("Account", "Transactions", "Pending", "In", "Out"):
            counts.add_column(column, justify="left" if column == "Account" else "right")
        for account in accounts:
            rows = client.get_transactions_by_transaction_date(account.account_id, start, today_)
            result.transactions += len(rows)
            money_in = sum((t.amount for t in rows if t.amount and t.amount > 0), Decimal(0))
            money_out = sum((t.amount for t in rows if t.amount and t.amount < 0), Decimal(0))
            counts.add_row(
                account.account_name or "",
                str(len(rows)),
                str(sum(t.pending for t in rows)),
                _money(money_in, account.currency),
                _money(money_out, account.currency),
            )
        console.print(counts)

        checking = accounts[0]
        latest = client.get_transactions_by_transaction_date(
            checking.account_id, today_ - dt.timedelta(days=10), today_
        )
        recent = Table(title=f"Latest in {checking.account_name}")
        for column in ("Date", "Description", "Amount", "Status"):
            recent.add_column(column, justify="right" if column == "Amount" else "left")
        for row in latest[-8:]:
            recent.add_row(
                str(row.booked_on),
                row.description or "",
                _money(row.amount, row.currency),
                row.status or "",
            )
        console.print(recent)

        console.rule("A week later")
        httpx.post(f"{server.root}/_sandbox/advance", json={"days": 7}).raise_for_status()
        before = {t.provider_id for t in latest}
        job = client.refresh_user_institution(login_id)
        client.wait_for_job(job.job_id)
        after = client.get_transactions_by_transaction_date(
            checking.account_id, today_ - dt.timedelta(days=10), today_ + dt.timedelta(days=7)
        )
        result.new_after_refresh = len({t.provider_id for t in after} - before)
        console.print(
            f"Refreshed {checking.account_name}: {result.new_after_refresh} new or "
            f"changed transactions, {sum(t.pending for t in after)} still pending."
        )

        console.rule("The v2 customer API")
        customer = client.create_customer("sophsync-demo-family", "Demo family")
        no_mfa = client.get_institution_by_name("Sophtron Bank NoMFA")[0]
        member = client.create_member(
            customer.customer_id,
            no_mfa.institution_id,
            DEMO_USERNAME,
            DEMO_PASSWORD,
            ["aggregate", "history"],
        )
        client.wait_for_job(member.job_id, v2=True)
        v2_accounts = client.list_member_accounts(customer.customer_id, member.member_id or "")
        result.v2_accounts = len(v2_accounts)
        console.print(
            f"Customer {customer.customer_id} ({customer.customer_name}): member at "
            f"{no_mfa.institution_name} with {len(v2_accounts)} accounts."
        )

        stats = httpx.get(f"{server.root}/_sandbox/stats").json()
        result.requests = int(stats["total"])
        console.rule("Done")
        console.print(
            f"{result.accounts} accounts, {result.transactions} transactions in 90 days, "
            f"{result.requests} Sophtron requests. Captcha image: {output / 'captcha.png'}"
        )
    return result
