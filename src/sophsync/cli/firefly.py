"""`sophsync push firefly`: the Firefly III data importer's workflow in one command.

The token comes from --token, --token-file or the environment and goes only into the
Authorization header: it is never printed and never written to the mapping file.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import click

from ..errors import BadInput
from ..exporters import firefly as engine
from .context import (
    EXIT_FAILED,
    acting,
    emit,
    json_option,
    output_options,
    plain,
    print_table,
    settings_of,
)

#: Environment variables read for the token, in this order.
TOKEN_VARIABLES = ("SOPHSYNC_FIREFLY_TOKEN", "FIREFLY_TOKEN")


def read_token(token: str | None, token_file: str | None) -> str:
    """The Personal Access Token: --token, else --token-file, else the environment."""
    if token and token_file:
        raise BadInput("Give --token or --token-file, not both", field="token")
    if token_file:
        path = Path(token_file).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise BadInput(
                f"Cannot read --token-file {path}: {error.strerror}", field="token-file"
            ) from None
        if not token:
            raise BadInput(f"--token-file {path} is empty", field="token-file")
        return token
    if not token:
        for name in TOKEN_VARIABLES:
            token = os.environ.get(name, "").strip()
            if token:
                break
    if not token:
        raise BadInput(
            "Firefly III needs a Personal Access Token: give --token, --token-file or set "
            "FIREFLY_TOKEN",
            field="token",
        )
    return token.strip()


@click.command("firefly")
@click.option("--url", metavar="URL", help="Firefly III's address [default: url in the file].")
@click.option(
    "--token", metavar="TOKEN", help="Personal Access Token [env FIREFLY_TOKEN]. Never shown."
)
@click.option(
    "--token-file",
    metavar="FILE",
    help="Read the token from this file instead (keeps it out of the process list).",
)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    help="The mapping file (JSON) [default: firefly.json in the data folder].",
)
@output_options
@click.option("--dry-run", is_flag=True, help="Show what would be created; change nothing.")
@json_option
@click.pass_context
def firefly(
    ctx: click.Context,
    url: str | None,
    token: str | None,
    token_file: str | None,
    config_file: str | None,
    account_ids: list[int],
    start: dt.date | None,
    end: dt.date | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Push accounts and transactions into Firefly III.

    Each sophsync account is mapped to a Firefly asset or liability account (created on the
    first run with its opening balance); payees become Firefly expense and revenue accounts; a
    payment between two linked accounts becomes one Firefly transaction. Every transaction
    carries its stable id as external_id, and the mapping is saved in a JSON file that the next
    run reuses, so running it again creates nothing. Without --from/--to the file's last date
    range is used. Exit code 0 when everything is in Firefly, 1 when some transaction was
    refused, 2 for bad input (options, token, mapping file), 4 when Firefly is busy.
    """
    if start is not None and end is not None and start > end:
        raise BadInput("--from must not be after --to", field="from")
    secret = read_token(token, token_file)
    settings = settings_of(ctx)
    path = (
        Path(config_file).expanduser()
        if config_file
        else engine.default_config_path(settings.data_dir)
    )
    config = engine.FireflyConfig.load(path)
    address = url or config.url
    if not address:
        raise BadInput(f"Give --url (Firefly III's address): {path} names none yet", field="url")
    with acting(ctx) as (core, actor), engine.FireflyClient(address, secret) as client:
        report = engine.push(
            core,
            actor,
            client,
            path,
            start=start,
            end=end,
            account_ids=account_ids or None,
            dry_run=dry_run,
        )

    def show() -> None:
        print_table(
            "Firefly III accounts" + (" (dry run)" if dry_run else ""),
            ["sophsync", "Name", "Type", "Firefly", "Action"],
            [[a.account_id, a.name, a.kind, a.firefly_id or "", a.action] for a in report.accounts],
            empty="No accounts to push.",
        )
        verb = "Would create" if dry_run else "Created"
        click.echo(
            f"{verb} {report.created} transactions in Firefly III ({report.transfers} between "
            f"linked accounts); {report.already} already there; "
            f"{report.pending_skipped} pending left out."
        )
        for failure in report.failures:
            click.echo(failure, err=True)
        if not dry_run:
            click.echo(f"Mapping saved in {report.config_path}.")

    emit(as_json, {**plain(report), "accounts_created": report.accounts_created}, show)
    if report.failures:
        sys.exit(EXIT_FAILED)
