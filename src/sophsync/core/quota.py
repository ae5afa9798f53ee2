"""Counting Sophtron requests per family and month, against a budget."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Connection, Table, select

from ..errors import QuotaExceeded
from ..store.models import RequestUsage
from ..store.upsert import upsert
from .app import Core


def month_of(moment: dt.datetime | dt.date) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


class RequestMeter:
    """Counts the requests a piece of work sends; :meth:`flush` adds them to the month's usage.

    Pass :meth:`count` as the SDK client's ``on_request``: it sees every HTTP request, retries
    included.
    """

    def __init__(self, core: Core, family_id: int) -> None:
        self.core = core
        self.family_id = family_id
        self.total = 0
        self._unflushed = 0

    def count(self, route: str) -> None:
        self.total += 1
        self._unflushed += 1

    def flush(self, db: Connection) -> None:
        """Add the requests counted since the last flush, in the caller's transaction."""
        if not self._unflushed:
            return
        add_usage(db, self.family_id, month_of(self.core.now()), self._unflushed)
        self._unflushed = 0


def add_usage(db: Connection, family_id: int, month: str, count: int) -> None:
    """Add ``count`` requests to the family's month in one upsert: two syncs starting a new
    month at the same moment must both count, not collide on the month's first row."""
    row = {"family_id": family_id, "month": month, "count": count}
    upsert(db, _USAGE, ("family_id", "month"), row, add=("count",))


_USAGE = cast(Table, RequestUsage.__table__)


def usage(core: Core, family_id: int, month: str | None = None) -> int:
    """Requests spent by a family in a month (default: this month)."""
    with core.connection() as plain:
        return usage_in(plain, core, family_id, month)


def usage_in(db: Connection, core: Core, family_id: int, month: str | None = None) -> int:
    """:func:`usage` inside the caller's transaction."""
    count = db.scalar(
        select(RequestUsage.count).where(
            RequestUsage.family_id == family_id,
            RequestUsage.month == (month or month_of(core.now())),
        )
    )
    return count or 0


def within_budget(core: Core, spent: int) -> None:
    """Refuse scheduled work once the month's budget is spent: :class:`QuotaExceeded` when
    ``spent`` requests use it up."""
    budget = core.settings.monthly_budget
    if spent >= budget:
        raise QuotaExceeded(
            f"This month's Sophtron request budget is spent ({spent} of {budget}). Scheduled "
            "syncs resume next month; raise SOPHSYNC_MONTHLY_BUDGET if your Sophtron plan "
            "allows more, or sync by hand."
        )
