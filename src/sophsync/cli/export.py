"""`sophsync export`: the household's transactions as a file for another tool.

The work is in :mod:`sophsync.exporters.files`; this command parses the options (a bad value is
one line on stderr and exit code 2), then writes to stdout or, atomically, to ``--output``.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from ..errors import BadInput
from ..exporters import files
from .context import acting, output_options


@click.command()
@click.option(
    "--format",
    "fmt",
    required=True,
    metavar="FORMAT",
    help="csv, ofx, qif, beancount or ledger (hledger reads the ledger journal).",
)
@output_options
@click.option(
    "--output",
    "-o",
    metavar="PATH",
    help="Write to this file (replaced atomically) instead of stdout.",
)
@click.option(
    "--accounts-map",
    metavar="FILE",
    help="TOML (or .json) file naming accounts and mapping categories to counter accounts.",
)
@click.option("--no-pending", is_flag=True, help="Leave pending transactions out.")
@click.pass_context
def export(
    ctx: click.Context,
    fmt: str,
    account_ids: list[int],
    start: dt.date | None,
    end: dt.date | None,
    output: str | None,
    accounts_map: str | None,
    no_pending: bool,
) -> None:
    """Write the household's transactions to a file: CSV, OFX, QIF, beancount or ledger.

    Reads the local copy only (run `sophsync sync` first for fresh data). The same data always
    gives the same bytes, and every transaction carries its stable id (sophsync-42), so that
    importing a newer export again duplicates nothing. Balances are the current ones.
    """
    chosen = files.parse_format(fmt)
    target = Path(output).expanduser() if output else None
    if target is not None and target.is_dir():
        raise BadInput(f"--output {target} is a folder; give a file name", field="output")
    with acting(ctx) as (core, actor):
        prepared = files.prepare(
            core,
            actor,
            account_ids=account_ids,
            start=start,
            end=end,
            pending=not no_pending,
            mapping=Path(accounts_map).expanduser() if accounts_map else None,
        )
    if target is None:
        files.write(prepared, chosen, sys.stdout)
        sys.stdout.flush()
        return
    files.write_file(prepared, chosen, target)
    count = len(prepared.selection.transactions)
    click.echo(
        f"Wrote {count} transactions of {len(prepared.accounts)} accounts to {target} ({chosen})."
    )
