"""One Settings object, built once at the edge (CLI flags > environment > defaults) and passed down.

Nothing below the edge reads the environment.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from .errors import BadInput

DEFAULT_HISTORY_DAYS = 120
MAX_HISTORY_DAYS = 3 * 366
DEFAULT_OVERLAP_DAYS = 30
DEFAULT_MONTHLY_BUDGET = 10_000


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("sophsync", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Everything configurable. ``database_url`` defaults to SQLite in ``data_dir``."""

    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None
    #: Fernet keys, comma-separated, newest first; else a key file in ``data_dir``.
    secret_key: str | None = None
    sophtron_user_id: str | None = None
    sophtron_access_key: str | None = None
    sophtron_base_url: str | None = None
    history_days: int = DEFAULT_HISTORY_DAYS
    overlap_days: int = DEFAULT_OVERLAP_DAYS
    monthly_budget: int = DEFAULT_MONTHLY_BUDGET
    sync_time: dt.time = dt.time(6, 0)
    #: How long a connection's job may run before the connection is marked timed out.
    connect_timeout_seconds: float = 240.0
    #: How long a sync may hold a connection's lock before the lock counts as abandoned.
    lock_seconds: float = 900.0
    #: ``local`` (a jobs table), ``procrastinate`` (PostgreSQL only) or ``auto``: procrastinate
    #: on PostgreSQL, local on SQLite.
    job_backend: str = "auto"
    #: A job whose worker has not beaten for this long is taken as dead and run again.
    job_stall_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.history_days <= MAX_HISTORY_DAYS:
            raise BadInput(
                f"history_days must be between 1 and {MAX_HISTORY_DAYS} (3 years); "
                f"got {self.history_days}",
                field="history_days",
            )
        if not 0 <= self.overlap_days <= 365:
            raise BadInput("overlap_days must be between 0 and 365", field="overlap_days")
        if self.monthly_budget < 1:
            raise BadInput("monthly_budget must be at least 1", field="monthly_budget")
        if self.job_backend not in {"auto", "local", "procrastinate"}:
            raise BadInput(
                "SOPHSYNC_JOB_BACKEND must be auto, local or procrastinate", field="job_backend"
            )
        if self.job_backend == "procrastinate" and self.embedded:
            raise BadInput(
                "The procrastinate job backend needs PostgreSQL "
                "(SOPHSYNC_DATABASE_URL=postgresql://...)",
                field="job_backend",
            )

    @property
    def jobs(self) -> str:
        """The job backend in use."""
        if self.job_backend == "auto":
            return "local" if self.embedded else "procrastinate"
        return self.job_backend

    @property
    def url(self) -> str:
        """The database URL in use (SQLite in the data directory unless one was given)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'sophsync.db'}"

    @property
    def embedded(self) -> bool:
        """True for the single-process SQLite mode."""
        return self.url.startswith("sqlite")

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.key"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``SOPHSYNC_*`` / ``SOPHTRON_*`` variables; ``overrides`` (flags) win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("SOPHSYNC_DATA_DIR"):
            values["data_dir"] = Path(env["SOPHSYNC_DATA_DIR"]).expanduser()
        for name, variable in (
            ("database_url", "SOPHSYNC_DATABASE_URL"),
            ("secret_key", "SOPHSYNC_SECRET_KEY"),
            ("sophtron_user_id", "SOPHTRON_USER_ID"),
            ("sophtron_access_key", "SOPHTRON_ACCESS_KEY"),
            ("sophtron_base_url", "SOPHTRON_BASE_URL"),
            ("job_backend", "SOPHSYNC_JOB_BACKEND"),
        ):
            if env.get(variable):
                values[name] = env[variable]
        if env.get("SOPHSYNC_JOB_STALL_SECONDS"):
            try:
                values["job_stall_seconds"] = float(env["SOPHSYNC_JOB_STALL_SECONDS"])
            except ValueError:
                raise BadInput(
                    "SOPHSYNC_JOB_STALL_SECONDS must be a number of seconds",
                    field="SOPHSYNC_JOB_STALL_SECONDS",
                ) from None
        for name, variable in (
            ("history_days", "SOPHSYNC_HISTORY_DAYS"),
            ("overlap_days", "SOPHSYNC_OVERLAP_DAYS"),
            ("monthly_budget", "SOPHSYNC_MONTHLY_BUDGET"),
        ):
            if env.get(variable):
                try:
                    values[name] = int(env[variable])
                except ValueError:
                    raise BadInput(
                        f"{variable} must be a whole number, not {env[variable]!r}", field=variable
                    ) from None
        if env.get("SOPHSYNC_SYNC_TIME"):
            try:
                values["sync_time"] = dt.time.fromisoformat(env["SOPHSYNC_SYNC_TIME"])
            except ValueError:
                raise BadInput(
                    "SOPHSYNC_SYNC_TIME must be a time of day such as 06:00",
                    field="SOPHSYNC_SYNC_TIME",
                ) from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
