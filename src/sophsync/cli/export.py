"""`sophsync export`: files for other tools (stub, replaced by the real command)."""

from __future__ import annotations

import click


@click.command()
def export() -> None:
    """Write the household's transactions to a file."""
