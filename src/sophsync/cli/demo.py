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
    """Run the whole sophsync flow against a built-in sandbox: no account, no network needed.

    Starts a local Sophtron with fresh credentials and an embedded store in OUTPUT/data, creates
    a family and its admin, saves the credentials, connects "Sophtron Bank" answering every MFA
    step (captcha, security question, token method, token), links every account, syncs, moves
    the sandbox a week ahead, syncs again, and checks the local copy against the sandbox's truth
    (exit code 1 if they differ).
    """
    result = run_demo(Console(), output=output, seed=seed, today=today.date() if today else None)
    if not result.matches_truth:
        raise click.ClickException("the local copy differs from the sandbox's truth")
