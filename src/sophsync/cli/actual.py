"""`sophsync push actual` (stub, replaced by the real command)."""

from __future__ import annotations

import click


@click.command()
def actual() -> None:
    """Push transactions into Actual Budget."""
