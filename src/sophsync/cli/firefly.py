"""`sophsync push firefly` (stub, replaced by the real command)."""

from __future__ import annotations

import click


@click.command()
def firefly() -> None:
    """Push transactions into Firefly III."""
