"""`sophsync push actual`: send accounts and transactions into an Actual Budget file.

The server's password comes from ``--password-stdin``, ``--password`` or the environment
(``SOPHSYNC_ACTUAL_PASSWORD``, ``ACTUAL_PASSWORD``); it is used to log in and never printed or
saved.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from ..errors import BadInput
from .context import acting, emit, json_option, output_options, print_table, settings_of


def _password(value: str | None, from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise BadInput(
                "--password-stdin read an empty line: pipe the password in", field="password"
            )
        return line
    if value:
        return value
    raise BadInput(
        "The Actual server's password is missing: give it with --password-stdin, --password or "
        "ACTUAL_PASSWORD",
        field="password",
    )


@click.command()
@click.option(
    "--url",
    envvar="SOPHSYNC_ACTUAL_URL",
    metavar="URL",
    required=True,
    help="The Actual server, like http://127.0.0.1:5006 (env SOPHSYNC_ACTUAL_URL).",
)
@click.option(
    "--password",
    envvar=["SOPHSYNC_ACTUAL_PASSWORD", "ACTUAL_PASSWORD"],
    metavar="P",
    help="The server's password (env SOPHSYNC_ACTUAL_PASSWORD or ACTUAL_PASSWORD). "
    "Prefer --password-stdin or the environment: a command line is visible to others.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the server's password from standard input."
)
@click.option(
    "--budget",
    envvar="SOPHSYNC_ACTUAL_BUDGET",
    metavar="SYNC_ID",
    required=True,
    help="The budget's sync id (Settings > Advanced settings in Actual), or its name.",
)
@click.option(
    "--encryption-password",
    envvar="SOPHSYNC_ACTUAL_ENCRYPTION_PASSWORD",
    metavar="P",
    help="The key of an end-to-end encrypted budget (env SOPHSYNC_ACTUAL_ENCRYPTION_PASSWORD).",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The account mapping file (default: actual.json in the data folder).",
)
@output_options
@json_option
@click.pass_context
def actual(
    ctx: click.Context,
    url: str,
    password: str | None,
    password_stdin: bool,
    budget: str,
    encryption_password: str | None,
    config: Path | None,
    account_ids: list[int],
    start: dt.date | None,
    end: dt.date | None,
    as_json: bool,
) -> None:
    """Push accounts and transactions into an Actual Budget file.

    Each account becomes an Actual account (created on the first run, found again afterwards)
    and each transaction carries its stable id as Actual's imported id, so Actual's own
    matching and rules apply and running the push again adds nothing. Pending transactions
    arrive uncleared and are updated in place when they post. A "Starting Balance"
    transaction makes each Actual balance equal sophsync's.

    \b
    Example:
      echo "$ACTUAL_PW" | sophsync push actual --url http://127.0.0.1:5006 \\
          --password-stdin --budget 5e9a0c4e-1b7f-4a57-9d43-0b7d3c1f2a61
    """
    # Imported here: actualpy takes a while to load, and only this command needs it.
    from ..exporters import actual as actual_push

    target = actual_push.ActualTarget(
        url=url,
        password=_password(password, password_stdin),
        budget=budget.strip(),
        encryption_password=encryption_password or None,
    )
    if config is None:
        config = actual_push.default_config(settings_of(ctx).data_dir)
    with acting(ctx) as (core, actor):
        result = actual_push.push(
            core,
            actor,
            target,
            config=config,
            account_ids=account_ids,
            start=start,
            end=end,
        )

    def show() -> None:
        rows = [
            (
                item.account_id,
                item.name,
                item.actual_name,
                item.how,
                item.added,
                item.matched,
                item.updated,
                item.unchanged,
                item.removed,
                f"{item.balance} {item.currency}",
            )
            for item in result.accounts
        ]
        print_table(
            f"Actual budget {result.budget_name!r}",
            (
                "id",
                "account",
                "in Actual",
                "account was",
                "added",
                "matched",
                "updated",
                "unchanged",
                "removed",
                "balance",
            ),
            rows,
            right=("id", "added", "matched", "updated", "unchanged", "removed", "balance"),
            empty="No account to push.",
        )
        totals = result.summary()
        click.echo(
            f"Accounts: {totals['accounts_created']} created, {totals['accounts_mapped']} mapped. "
            f"Transactions: {totals['added']} added, {totals['matched']} matched, "
            f"{totals['updated']} updated, {totals['unchanged']} unchanged, "
            f"{totals['removed']} removed. Mapping saved in {result.config}."
        )

    emit(
        as_json,
        {
            "server": result.server,
            "budget": result.budget,
            "budget_name": result.budget_name,
            "config": result.config,
            **result.summary(),
            "accounts": [
                {
                    "id": item.account_id,
                    "name": item.name,
                    "actual_id": item.actual_id,
                    "actual_name": item.actual_name,
                    "account": item.how,
                    "added": item.added,
                    "matched": item.matched,
                    "updated": item.updated,
                    "unchanged": item.unchanged,
                    "removed": item.removed,
                    "balance": str(item.balance),
                    "currency": item.currency,
                }
                for item in result.accounts
            ],
        },
        show,
    )
