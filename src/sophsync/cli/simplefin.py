"""`sophsync simplefin` (stub, replaced by the real command group)."""

from __future__ import annotations

import click


@click.group()
def simplefin() -> None:
    """The SimpleFIN bridge: setup tokens and accesses."""
