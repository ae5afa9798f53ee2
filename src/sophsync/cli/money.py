"""Money commands: ``accounts``, ``sync``, ``transactions`` and ``runs``.

Dates, amounts and account types are parsed here rather than by click, so that a bad value is one
line on stderr (``Error: ...``, exit code 2) like every other bad input.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from ..core import accounts as accounts_core
from ..core import connect, link, sync
from ..core.app import Core
from ..core.families import Actor
from ..core.importer import format_money, to_decimal
from ..errors import BadInput, NeedsUser, Retryable
from ..store.models import AccountType, ConnectionStatus, RunStatus
from .context import (
    EXIT_FAILED,
    EXIT_NEEDS_YOU,
    EXIT_OK,
    EXIT_TRY_LATER,
    acting,
    emit,
    json_option,
    parse_date,
    plain,
    print_table,
)

#: Error codes of sync runs that a person must resolve (answer MFA, reconnect, fix credentials).
NEEDS_YOU_CODES = frozenset(
    {
        "requires_update",
        "not_connected",
        "needs_user",
        "quota_exceeded",
        "invalid_credentials",
        "no_credentials",
    }
)


# --- parsing --------------------------------------------------------------------------------


def parse_amount(value: str | None, flag: str) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise BadInput(f"{flag} must be an amount like 25.00, not {value!r}", field=flag) from None
    if not amount.is_finite() or amount < 0:
        raise BadInput(f"{flag} must be a positive amount like 25.00, not {value!r}", field=flag)
    return amount


def parse_type(value: str | None) -> AccountType | None:
    if value is None:
        return None
    wanted = value.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return AccountType(wanted)
    except ValueError:
        choices = ", ".join(kind.value for kind in AccountType)
        raise BadInput(f"--type must be one of {choices}, not {value!r}", field="type") from None


def _money(minor: int | None, currency: str) -> str:
    return format_money(minor, currency)


def _when(moment: dt.datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _kind(kind: AccountType, subtype: str | None) -> str:
    return f"{kind.value}/{subtype}" if subtype else kind.value


def _decimal_text(minor: int | None, currency: str) -> str | None:
    return None if minor is None else str(to_decimal(minor, currency))


# --- accounts -------------------------------------------------------------------------------


@click.group("accounts")
def accounts_group() -> None:
    """List, link, unlink and change the household's accounts."""


@accounts_group.command("list")
@json_option
@click.pass_context
def accounts_list(ctx: click.Context, as_json: bool) -> None:
    """Local accounts with their balances, then the bank accounts Sophtron found that no local
    account follows yet (link them with `sophsync accounts link`)."""
    with acting(ctx) as (core, actor):
        views = accounts_core.list_accounts(core, actor)
        found = link.provider_accounts(core, actor)
        banks = {c.id: c.institution_name for c in connect.list_connections(core, actor)}
    unlinked = [item for item in found if item.linked_account_id is None]
    value = {
        "accounts": [
            {
                **plain(view),
                "balance": _decimal_text(view.balance_minor, view.currency),
                "available": _decimal_text(view.available_minor, view.currency),
            }
            for view in views
        ],
        "unlinked": [
            {
                **plain(item),
                "institution": banks.get(item.connection_id),
                "balance": _decimal_text(item.balance_minor, item.currency),
            }
            for item in unlinked
        ],
    }

    def show() -> None:
        print_table(
            "Accounts",
            ["ID", "Name", "Type", "Balance", "Currency", "Linked", "Last synced"],
            [
                [
                    view.id,
                    view.name,
                    _kind(view.type, view.subtype),
                    _money(view.balance_minor, view.currency),
                    view.currency,
                    "yes" if view.linked else "no",
                    _when(view.last_synced_at),
                ]
                for view in views
            ],
            right=["Balance"],
            empty="No accounts yet: link the ones Sophtron found with `sophsync accounts link`.",
        )
        if unlinked:
            print_table(
                "Found at the bank, not linked (link with `sophsync accounts link ID`)",
                ["ID", "Bank", "Name", "Mask", "Type", "Balance", "Currency"],
                [
                    [
                        item.id,
                        banks.get(item.connection_id, ""),
                        item.name,
                        item.mask,
                        _kind(item.kind, item.provider_subtype),
                        _money(item.balance_minor, item.currency),
                        item.currency,
                    ]
                    for item in unlinked
                ],
                right=["Balance"],
            )

    emit(as_json, value, show)


@accounts_group.command("link")
@click.argument("provider_account_id", type=int, required=False)
@click.option("--all", "link_every", is_flag=True, help="Link every unlinked account found.")
@click.option("--connection", "connection_id", type=int, help="With --all: only this connection.")
@click.option("--to", "account_id", type=int, help="Link to this existing (unlinked) account.")
@click.option("--name", help="Name of the new account (default: the bank's).")
@click.option("--type", "kind", metavar="TYPE", help="depository, credit_card, investment, ...")
@click.option("--subtype", help="checking, savings, mortgage, ... (any text).")
@click.option("--start", metavar="DATE", help="First day to import (YYYY-MM-DD).")
@click.option("--history-days", type=int, help="Import this many days back instead of --start.")
@click.option("--invert-sign", is_flag=True, help="The bank reports amounts the other way round.")
@json_option
@click.pass_context
def accounts_link(
    ctx: click.Context,
    provider_account_id: int | None,
    link_every: bool,
    connection_id: int | None,
    account_id: int | None,
    name: str | None,
    kind: str | None,
    subtype: str | None,
    start: str | None,
    history_days: int | None,
    invert_sign: bool,
    as_json: bool,
) -> None:
    """Link a bank account Sophtron found (PROVIDER_ACCOUNT_ID, from `accounts list`) to a new
    local account, or to an existing one with --to. With --all, link every unlinked account to a
    new local account whose type is guessed from Sophtron's."""
    first_day = parse_date(start, "--start")
    account_type = parse_type(kind)
    if first_day is not None and history_days is not None:
        raise BadInput("Give --start or --history-days, not both", field="start")
    with acting(ctx) as (core, actor):
        if link_every:
            if provider_account_id is not None or account_id is not None:
                raise BadInput("--all links every account: give no ID and no --to", field="all")
            if name or account_type or subtype or first_day or invert_sign:
                raise BadInput("--all takes only --connection and --history-days", field="all")
            if connection_id is not None:
                connect.get_connection(core, actor, connection_id)
            ids = link.link_all(core, actor, connection_id, history_days=history_days)
        else:
            if provider_account_id is None:
                raise BadInput("Name the account to link (an ID from `accounts list`) or use --all")
            if connection_id is not None:
                raise BadInput("--connection goes with --all", field="connection")
            if account_id is not None and (name or account_type or subtype or invert_sign):
                raise BadInput(
                    "--to keeps the existing account's name, type and sign: change them with "
                    "`sophsync accounts set`",
                    field="to",
                )
            choice = link.LinkChoice(
                provider_account_id,
                account_id=account_id,
                name=name,
                type=account_type,
                subtype=subtype,
                sync_start_date=first_day,
                history_days=history_days,
                invert_sign=invert_sign,
            )
            ids = link.link_many(core, actor, [choice])
        linked = [accounts_core.get_account(core, actor, i) for i in ids]

    def show() -> None:
        if not linked:
            click.echo("Nothing to link: every account found is linked already.")
            return
        for view in linked:
            click.echo(
                f"Linked account {view.id} ({view.name}, {_kind(view.type, view.subtype)}), "
                f"syncing from {view.sync_start_date}."
            )
        click.echo("Run `sophsync sync` to import their transactions.")

    emit(as_json, linked, show)


@accounts_group.command("unlink")
@click.argument("account_id", type=int)
@click.pass_context
def accounts_unlink(ctx: click.Context, account_id: int) -> None:
    """Stop syncing ACCOUNT_ID; its transactions and balance history stay."""
    with acting(ctx) as (core, actor):
        link.unlink(core, actor, account_id)
        view = accounts_core.get_account(core, actor, account_id)
    click.echo(f"Unlinked account {view.id} ({view.name}); its history stays.")


@accounts_group.command("set")
@click.argument("account_id", type=int)
@click.option("--name", help="A new name.")
@click.option("--type", "kind", metavar="TYPE", help="depository, credit_card, investment, ...")
@click.option("--subtype", help="checking, savings, mortgage, ... (empty text clears it).")
@click.option("--start", metavar="DATE", help="Sync start date: the first day to import.")
@click.option(
    "--invert-sign/--no-invert-sign",
    default=None,
    help="Flip the sign of everything the bank reports (a bank that reports the other way).",
)
@json_option
@click.pass_context
def accounts_set(
    ctx: click.Context,
    account_id: int,
    name: str | None,
    kind: str | None,
    subtype: str | None,
    start: str | None,
    invert_sign: bool | None,
    as_json: bool,
) -> None:
    """Change an account's name, type, subtype, sync start date or sign."""
    first_day = parse_date(start, "--start")
    account_type = parse_type(kind)
    if all(v is None for v in (name, account_type, subtype, first_day, invert_sign)):
        raise BadInput(
            "Nothing to change: give --name, --type, --subtype, --start or --invert-sign"
        )
    with acting(ctx) as (core, actor):
        view = accounts_core.update_account(
            core,
            actor,
            account_id,
            name=name,
            type=account_type,
            subtype=subtype,
            invert_sign=invert_sign,
            sync_start_date=first_day,
        )

    def show() -> None:
        sign = ", sign inverted" if view.invert_sign else ""
        click.echo(
            f"Account {view.id}: {view.name}, {_kind(view.type, view.subtype)}, "
            f"{_money(view.balance_minor, view.currency)}, syncing from "
            f"{view.sync_start_date}{sign}."
        )

    emit(as_json, view, show)


# --- sync -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One connection's sync: its run, or why there is none (another sync holds the lock)."""

    connection_id: int
    bank: str
    run: sync.SyncRunView | None
    needs_you: bool
    busy: str | None = None

    @property
    def label(self) -> str:
        if self.run is None:
            return "busy"
        if self.needs_you:
            return "needs you"
        return self.run.status.value


def _needs_you(core: Core, actor: Actor, run: sync.SyncRunView) -> bool:
    if run.status is RunStatus.NEEDS_INPUT or run.error_code in NEEDS_YOU_CODES:
        return True
    if run.status is RunStatus.SUCCEEDED or run.connection_id is None:
        return False
    after = connect.get_connection(core, actor, run.connection_id)
    return after.status is ConnectionStatus.REQUIRES_UPDATE or after.waiting_for_person


def _progress() -> Progress:
    console = Console(stderr=True)
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )


def run_syncs(
    core: Core,
    actor: Actor,
    connections: list[connect.ConnectionView],
    backfill_from: dt.date | None,
) -> list[Outcome]:
    """Sync the connections one after another, with a progress bar each that advances per
    account read."""
    outcomes = []
    with _progress() as progress:
        tasks = {
            c.id: progress.add_task(f"{c.institution_name} ({c.id})", total=1, status="waiting")
            for c in connections
        }
        for connection in connections:
            task = tasks[connection.id]

            def report(step: str, done: int, total: int, task: TaskID = task) -> None:
                # Until the accounts are known (the refresh) the bar just pulses.
                progress.update(task, completed=done, total=total or None, status=step)

            try:
                run = sync.sync_connection(
                    core,
                    connection.id,
                    trigger="manual",
                    backfill_from=backfill_from,
                    progress=report,
                )
            except Retryable as error:
                outcomes.append(
                    Outcome(connection.id, connection.institution_name, None, False, error.message)
                )
                progress.update(task, completed=1, total=1, status="busy: another sync runs")
                continue
            outcome = Outcome(
                connection.id, connection.institution_name, run, _needs_you(core, actor, run)
            )
            outcomes.append(outcome)
            known = next(t.total for t in progress.tasks if t.id == task)
            finished = max(1, int(known or 0))
            progress.update(
                task,
                completed=finished,
                total=finished,
                status=f"{outcome.label}: +{run.added} ~{run.updated} -{run.removed}",
            )
    return outcomes


def exit_code(outcomes: list[Outcome]) -> int:
    """Needs-you (3) wins over failure (1), failure over busy (4): see docs/cli.md."""
    if any(o.needs_you for o in outcomes):
        return EXIT_NEEDS_YOU
    if any(o.run is not None and o.run.status is not RunStatus.SUCCEEDED for o in outcomes):
        return EXIT_FAILED
    if any(o.run is None for o in outcomes):
        return EXIT_TRY_LATER
    return EXIT_OK


def _show_outcomes(outcomes: list[Outcome]) -> None:
    print_table(
        "Sync",
        ["Connection", "Bank", "Status", "Added", "Updated", "Removed", "Requests", "Error"],
        [
            [
                o.connection_id,
                o.bank,
                o.label,
                o.run.added if o.run else "",
                o.run.updated if o.run else "",
                o.run.removed if o.run else "",
                o.run.requests if o.run else "",
                (o.run.error if o.run else o.busy) or "",
            ]
            for o in outcomes
        ],
        right=["Added", "Updated", "Removed", "Requests"],
    )


@click.command("sync")
@click.option("--connection", "connection_id", type=int, help="Sync only this connection.")
@click.option("--backfill-from", metavar="DATE", help="Also read older history, from this day on.")
@json_option
@click.pass_context
def sync_command(
    ctx: click.Context, connection_id: int | None, backfill_from: str | None, as_json: bool
) -> None:
    """Sync the household's banks now, in this process: refresh at Sophtron, then import
    balances and transactions. Exit code 0 when every sync succeeded, 3 when a bank needs you
    (MFA, reconnect), 1 when one failed otherwise, 4 when another sync was running."""
    since = parse_date(backfill_from, "--backfill-from")
    with acting(ctx) as (core, actor):
        if since is not None:
            link.start_date(core, since, None)  # in the past, within Sophtron's 3 years
        if connection_id is not None:
            connections = [connect.get_connection(core, actor, connection_id)]
        else:
            connections = connect.list_connections(core, actor)
        if not connections:
            raise NeedsUser(
                "No institution is connected yet. Connect a bank first.", code="no_connections"
            )
        outcomes = run_syncs(core, actor, connections, since)
    runs: list[Any] = [o.run for o in outcomes if o.run is not None]
    emit(as_json, runs, lambda: _show_outcomes(outcomes))
    code = exit_code(outcomes)
    if code != EXIT_OK:
        sys.exit(code)


# --- transactions ---------------------------------------------------------------------------


@click.group("transactions")
def transactions_group() -> None:
    """Read the household's transactions."""


@transactions_group.command("list")
@click.option("--account", "account_id", type=int, help="Only this account.")
@click.option("--from", "start", metavar="DATE", help="From this day on (YYYY-MM-DD).")
@click.option("--to", "end", metavar="DATE", help="Up to this day (YYYY-MM-DD).")
@click.option("--search", metavar="TEXT", help="In the description or merchant, any case.")
@click.option("--min-amount", metavar="X", help="Size at least X, money in or out (25.00).")
@click.option("--max-amount", metavar="X", help="Size at most X, money in or out.")
@click.option("--pending/--posted", default=None, help="Only pending, or only posted ones.")
@click.option("--limit", default=50, show_default=True, type=int, help="Rows per page (1-1000).")
@click.option("--cursor", type=int, metavar="ID", help="Start after this transaction (paging).")
@json_option
@click.pass_context
def transactions_list(
    ctx: click.Context,
    account_id: int | None,
    start: str | None,
    end: str | None,
    search: str | None,
    min_amount: str | None,
    max_amount: str | None,
    pending: bool | None,
    limit: int,
    cursor: int | None,
    as_json: bool,
) -> None:
    """Transactions, newest first, a page at a time: when there are more, the next page's
    --cursor is printed."""
    filters: dict[str, Any] = {
        "account_id": account_id,
        "start": parse_date(start, "--from"),
        "end": parse_date(end, "--to"),
        "search": search,
        "min_amount": parse_amount(min_amount, "--min-amount"),
        "max_amount": parse_amount(max_amount, "--max-amount"),
        "pending": pending,
    }
    with acting(ctx) as (core, actor):
        rows = accounts_core.list_transactions(core, actor, **filters, after_id=cursor, limit=limit)
        more = bool(rows) and len(rows) == limit
        if more:
            more = bool(
                accounts_core.list_transactions(
                    core, actor, **filters, after_id=rows[-1].id, limit=1
                )
            )
        names = {a.id: a.name for a in accounts_core.list_accounts(core, actor)}
    next_cursor = rows[-1].id if more else None

    def show() -> None:
        print_table(
            None,
            ["ID", "Date", "Account", "Description", "Amount", "Status"],
            [
                [
                    row.id,
                    row.date,
                    names.get(row.account_id, row.account_id),
                    row.merchant or row.description,
                    _money(row.amount_minor, row.currency),
                    "pending" if row.pending else "posted",
                ]
                for row in rows
            ],
            right=["Amount"],
            empty="No transactions match.",
        )
        if next_cursor is not None:
            click.echo(f"More: add --cursor {next_cursor}")

    value = {
        "transactions": [
            {**plain(row), "amount": _decimal_text(row.amount_minor, row.currency)} for row in rows
        ],
        "next_cursor": next_cursor,
    }
    emit(as_json, value, show)


# --- runs -----------------------------------------------------------------------------------


@click.group("runs")
def runs_group() -> None:
    """Read the history of syncs."""


@runs_group.command("list")
@click.option("--connection", "connection_id", type=int, help="Only this connection's runs.")
@click.option("--limit", default=20, show_default=True, type=int, help="How many runs (1-1000).")
@json_option
@click.pass_context
def runs_list(ctx: click.Context, connection_id: int | None, limit: int, as_json: bool) -> None:
    """The latest sync runs, newest first: status, counts, Sophtron requests spent, error."""
    if not 1 <= limit <= accounts_core.MAX_PAGE:
        raise BadInput(f"--limit must be between 1 and {accounts_core.MAX_PAGE}", field="limit")
    with acting(ctx) as (core, actor):
        if connection_id is not None:
            connect.get_connection(core, actor, connection_id)
        runs = sync.sync_runs(core, actor, limit=limit, connection_id=connection_id)
        banks = {c.id: c.institution_name for c in connect.list_connections(core, actor)}

    def show() -> None:
        print_table(
            "Sync runs",
            [
                "ID",
                "Bank",
                "Trigger",
                "Status",
                "Started",
                "Added",
                "Updated",
                "Removed",
                "Requests",
                "Error",
            ],
            [
                [
                    run.id,
                    banks.get(run.connection_id, "") if run.connection_id else "",
                    run.trigger,
                    run.status.value,
                    _when(run.started_at),
                    run.added,
                    run.updated,
                    run.removed,
                    run.requests,
                    run.error or "",
                ]
                for run in runs
            ],
            right=["Added", "Updated", "Removed", "Requests"],
            empty="No syncs yet: run `sophsync sync`.",
        )

    emit(as_json, runs, show)


#: What ``cli/__init__.py`` registers.
COMMANDS: tuple[click.Command, ...] = (accounts_group, sync_command, transactions_group, runs_group)
