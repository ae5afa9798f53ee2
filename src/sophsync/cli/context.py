"""What every command that works on a household shares: the core, who acts, output, exit codes.

The command line acts as the household's first admin: whoever can run it can read the data
folder and the database anyway. With several households in one database, ``--family`` (or
``SOPHSYNC_FAMILY``) names the one to work on.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..core import families
from ..core.app import Core
from ..core.families import Actor
from ..errors import BadInput, NotFound
from ..settings import Settings

#: Exit codes every command keeps.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
#: A person must act: answer MFA, reconnect a bank (``requires_update``).
EXIT_NEEDS_YOU = 3
#: Temporary trouble (Sophtron busy, rate limited): try again later.
EXIT_TRY_LATER = 4

#: How every sophsync process writes its log lines.
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def parse_date(value: str | None, flag: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        message = f"{flag} must be a date like 2026-01-31, not {value!r}"
        raise BadInput(message, field=flag) from None


def _account_ids(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[int]:
    ids: list[int] = []
    for value in values:
        text = value.strip().removeprefix("sophsync-account-")
        if not text.isdigit():
            message = (
                f"--account must be an account id like 3 (see `sophsync accounts list`), "
                f"not {value!r}"
            )
            raise BadInput(message, field="account")
        ids.append(int(text))
    return ids


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--account``, ``--from`` and ``--to``, as every output (export, push) takes them: the
    command receives ``account_ids`` (a list, empty for all) and the dates ``start`` and
    ``end`` (inclusive, or None)."""
    for option in reversed(
        (
            click.option(
                "--account",
                "account_ids",
                multiple=True,
                metavar="ID",
                callback=_account_ids,
                help="Only this account (repeat for several; ids from `sophsync accounts list`).",
            ),
            click.option(
                "--from",
                "start",
                metavar="DATE",
                callback=lambda ctx, param, value: parse_date(value, "--from"),
                help="Only transactions dated on or after this day (YYYY-MM-DD).",
            ),
            click.option(
                "--to",
                "end",
                metavar="DATE",
                callback=lambda ctx, param, value: parse_date(value, "--to"),
                help="Only transactions dated on or before this day (YYYY-MM-DD).",
            ),
        )
    ):
        command = option(command)
    return command


def settings_of(ctx: click.Context) -> Settings:
    settings = ctx.find_object(Settings)
    if settings is None:
        settings = Settings.from_env()
    return settings


def family_of(ctx: click.Context) -> str | None:
    """The household named by ``--family`` / ``SOPHSYNC_FAMILY``, if any."""
    root = ctx.find_root()
    value = root.meta.get("sophsync.family")
    return value if isinstance(value, str) and value else None


@contextmanager
def opened(ctx: click.Context) -> Iterator[Core]:
    """The core over the configured database, closed afterwards."""
    core = Core.open(settings_of(ctx))
    try:
        yield core
    finally:
        core.close()


def pick_family(core: Core, wanted: str | None) -> Actor:
    """The admin of the household ``wanted`` (its name or id), or of the only one."""
    found = families.families(core)
    if not found:
        raise NotFound(
            "There is no household yet. Run `sophsync init` to create it.", code="not_set_up"
        )
    if wanted is not None:
        matches = [f for f in found if wanted in {f.name, str(f.id)}]
        if not matches:
            names = ", ".join(repr(f.name) for f in found)
            raise BadInput(f"No household is named {wanted!r}; there is {names}", field="family")
        return families.family_admin(core, matches[0].id)
    if len(found) > 1:
        names = ", ".join(repr(f.name) for f in found)
        raise BadInput(
            f"This database holds several households ({names}): choose one with --family NAME",
            field="family",
        )
    return families.family_admin(core, found[0].id)


@contextmanager
def acting(ctx: click.Context) -> Iterator[tuple[Core, Actor]]:
    """The core and the admin the command acts as."""
    with opened(ctx) as core:
        yield core, pick_family(core, family_of(ctx))


def plain(value: Any) -> Any:
    """A value as JSON can hold it: dataclasses and named tuples as objects, dates as ISO text,
    enums as values."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in asdict(value).items()}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, int | float | str | bool):
        return plain(value.value)
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(plain(value), indent=2, default=str))


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    right: Sequence[str] = (),
    empty: str = "Nothing yet.",
) -> None:
    """A table on stdout (plain text when stdout is not a terminal)."""
    console = Console()
    if not rows:
        console.print(empty)
        return
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)


def emit(as_json: bool, value: Any, show: Callable[[], None] | None = None) -> None:
    """JSON for scripts, else what ``show`` prints."""
    if as_json or show is None:
        print_json(value)
    else:
        show()
