"""The ``sophsync`` command line. Each command is a thin shell over the library."""

from __future__ import annotations

import logging
import sys

import click

from .. import __version__
from ..sophtron.errors import SophtronError
from .demo import demo
from .sandbox import sandbox


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sophsync")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """sophsync: self-hosted bank sync on the Sophtron aggregation API.

    Keeps an exact local copy of a household's balances and transactions. Run `sophsync demo`
    to see the whole flow against the built-in Sophtron sandbox, offline.
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(logging.DEBUG, level), format="%(levelname)s %(name)s: %(message)s"
    )


cli.add_command(sandbox)
cli.add_command(demo)


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
    except SophtronError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
