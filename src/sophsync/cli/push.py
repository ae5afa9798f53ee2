"""`sophsync push`: send the local copy into a bookkeeping app. Reads the store only."""

from __future__ import annotations

import click

from .actual import actual
from .firefly import firefly


@click.group()
def push() -> None:
    """Push accounts and transactions into Firefly III or Actual Budget.

    Each push reads the local copy only (never Sophtron), carries every transaction's stable id
    and saves its account mapping in a JSON file that the next run reuses, so running it again
    adds nothing.
    """


push.add_command(firefly)
push.add_command(actual)
