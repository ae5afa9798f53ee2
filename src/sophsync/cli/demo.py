"""``sophsync demo``: the whole flow against a built-in sandbox."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from rich.console import Console

from ..demo import run_demo


@click.command(short_help="Run the whole flow against a built-in sandbox.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the sandbox world.")
@click.option(
    "--today",
    type=click.DateTime(["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="Fix the sandbox's date (default: today, UTC).",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Folder for files the demo writes (the captcha image).",
)
def demo(seed: int, today: dt.datetime | None, output: Path) -> None:
    """Run a full Sophtron flow against a built-in sandbox: no account, no network needed.

    Starts a local Sophtron with fresh credentials, searches "Sophtron Bank", logs in and answers
    every MFA prompt (captcha, security question, token method, token), lists the accounts and
    transactions found, advances the sandbox a week and refreshes, then repeats the connection
    through the v2 customer API.
    """
    run_demo(Console(), output=output, seed=seed, today=today.date() if today else None)
