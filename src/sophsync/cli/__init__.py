"""The ``sophsync`` command line. Each command is a thin shell over the library."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from .. import __version__
from ..errors import SophsyncError
from ..settings import load as load_settings
from ..sophtron.errors import SophtronError
from .admin import db, secrets_group, worker
from .bank import COMMANDS as BANK_COMMANDS
from .context import LOG_FORMAT
from .demo import demo
from .export import export
from .money import COMMANDS as MONEY_COMMANDS
from .push import push
from .sandbox import sandbox
from .serve import serve
from .setup import init
from .simplefin import simplefin


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sophsync")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    envvar="SOPHSYNC_DATA_DIR",
    help="Data folder: the SQLite database and key file [env SOPHSYNC_DATA_DIR].",
)
@click.option(
    "--database-url",
    envvar="SOPHSYNC_DATABASE_URL",
    metavar="URL",
    help="sqlite:///PATH or postgresql://... [env SOPHSYNC_DATABASE_URL].",
)
@click.option(
    "--family",
    envvar="SOPHSYNC_FAMILY",
    metavar="NAME",
    help="The household to work on, when the database holds several "
    "[env SOPHSYNC_FAMILY; else `family` in the config file].",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="SOPHSYNC_CONFIG",
    metavar="PATH",
    help="Config file (TOML) [env SOPHSYNC_CONFIG; default: config.toml in the data folder].",
)
@click.pass_context
def cli(
    ctx: click.Context,
    verbose: int,
    data_dir: str | None,
    database_url: str | None,
    family: str | None,
    config_path: str | None,
) -> None:
    """sophsync: self-hosted bank sync on the Sophtron aggregation API.

    Keeps an exact local copy of a household's balances and transactions. Run `sophsync demo`
    to see the whole flow against the built-in Sophtron sandbox, offline.
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(logging.DEBUG, level), format=LOG_FORMAT)
    # Settings are built here, once: flags over environment over the config file over defaults.
    loaded = load_settings(
        {
            "data_dir": Path(data_dir).expanduser() if data_dir else None,
            "database_url": database_url,
            "family": family,
        },
        config_path=Path(config_path) if config_path else None,
    )
    for warning in loaded.warnings:
        click.echo(warning, err=True)
    ctx.meta["sophsync.family"] = loaded.family
    ctx.meta["sophsync.config"] = loaded.config
    ctx.obj = loaded.settings


cli.add_command(sandbox)
cli.add_command(demo)
cli.add_command(worker)
cli.add_command(serve)
cli.add_command(db)
cli.add_command(secrets_group)
for command in BANK_COMMANDS:
    cli.add_command(command)
for command in MONEY_COMMANDS:
    cli.add_command(command)
cli.add_command(init)
cli.add_command(export)
cli.add_command(push)
cli.add_command(simplefin)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: errors become one line on stderr and a non-zero exit code."""
    try:
        cli.main(args=argv, prog_name="sophsync", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except SophsyncError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(error.exit_code)
    except SophtronError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
