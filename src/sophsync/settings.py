"""One Settings object, built once at the edge (CLI flags > environment > defaults) and passed down.

Nothing below the edge reads the environment.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from .errors import BadInput

#: The config file's name in the data directory.
CONFIG_NAME = "config.toml"

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
    #: The address clients reach this server at (``https://money.example.com``): the SimpleFIN
    #: bridge builds its claim and access URLs on it. Unset: the address a request came to.
    public_url: str | None = None

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
        if self.public_url is not None:
            object.__setattr__(self, "public_url", check_public_url(self.public_url))

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
        values = _env_values(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def load(
        cls,
        flags: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        config_path: Path | None = None,
    ) -> Settings:
        """Settings from flags over environment over the config file over defaults."""
        return load(flags, environ, config_path).settings


def check_public_url(
    value: str, name: str = "SOPHSYNC_PUBLIC_URL", field: str = "public_url"
) -> str:
    """An ``http(s)://host[:port][/path]`` address without a trailing slash, or :class:`BadInput`
    naming ``field``: clients are told URLs built on it, so it must be one they can reach."""
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = parts._replace(netloc="")
    if (
        parts.scheme not in {"http", "https"}
        or not parts.hostname
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
    ):
        raise BadInput(
            f"{name} must be an address like https://money.example.com, not {value!r}",
            field=field,
        )
    return url


def _env_values(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment gives, converted and checked."""
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
        ("public_url", "SOPHSYNC_PUBLIC_URL"),
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
    return values


# The config file ------------------------------------------------------------------------------

#: Top-level keys of the config file: the Settings field each sets and what it holds.
_TOP_KEYS: dict[str, tuple[str, str]] = {
    "data_dir": ("data_dir", "path"),
    "database_url": ("database_url", "text"),
    "secret_key": ("secret_key", "text"),
    "history_days": ("history_days", "int"),
    "overlap_days": ("overlap_days", "int"),
    "monthly_budget": ("monthly_budget", "int"),
    "sync_time": ("sync_time", "time"),
    "job_backend": ("job_backend", "text"),
    "job_stall_seconds": ("job_stall_seconds", "seconds"),
    "connect_timeout_seconds": ("connect_timeout_seconds", "seconds"),
    "lock_seconds": ("lock_seconds", "seconds"),
    "public_url": ("public_url", "text"),
    "family": ("family", "text"),
}
#: Keys of the ``[sophtron]`` table.
_SOPHTRON_KEYS: dict[str, tuple[str, str]] = {
    "user_id": ("sophtron_user_id", "text"),
    "access_key": ("sophtron_access_key", "text"),
    "base_url": ("sophtron_base_url", "text"),
}
#: Every key the file may hold, dotted for tables.
CONFIG_KEYS = [*_TOP_KEYS, "sophtron", *(f"sophtron.{key}" for key in _SOPHTRON_KEYS)]

_KIND_HELP = {
    "path": "must be a folder path in quotes",
    "text": "must be text in quotes",
    "int": "must be a whole number",
    "time": "must be a time of day like 06:00",
    "seconds": "must be a number of seconds",
}
_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\"' -]+?)\s*\]")
_KEY = re.compile(r"^\s*(?:\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_.-]+))\s*=")
_TOML_LINE = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")


class ConfigError(BadInput):
    """A bad config file: the message names the file, the line and the key."""


@dataclass(frozen=True)
class ConfigFile:
    """A parsed config file: the settings it gives (by Settings field), where each key is."""

    path: Path
    values: dict[str, Any]
    #: Settings field -> line number of its key.
    lines: dict[str, int]

    def where(self, name: str) -> str:
        line = self.lines.get(name)
        return f"{self.path.name} line {line}" if line else self.path.name

    @property
    def family(self) -> str | None:
        value = self.values.get("family")
        return value if isinstance(value, str) and value else None

    @classmethod
    def read(cls, path: Path) -> ConfigFile:
        """Read and check the file; :class:`ConfigError` names the bad key and its line."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"The config file {path} does not exist", field="config") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(
                f"Cannot read the config file {path}: {error}", field="config"
            ) from None
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            message = str(error)
            found = _TOML_LINE.search(message)
            if found:
                line = int(found.group(1))
            else:  # "(at end of document)": the last line
                line = max(1, len(text.splitlines()))
                message = message.replace("(at end of document)", "").strip()
            where = f"{path.name} line {line}"
            message = _TOML_LINE.sub("", message)
            raise ConfigError(f"{where}: {message} (not valid TOML)", field="config") from None
        key_lines = _key_lines(text)
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}

        def take(table: str, raw: Mapping[str, Any], known: dict[str, tuple[str, str]]) -> None:
            for key, value in raw.items():
                dotted = f"{table}.{key}" if table else key
                line = key_lines.get(dotted)
                where = f"{path.name} line {line}" if line else path.name
                if dotted == "sophtron" and isinstance(value, dict):
                    take("sophtron", value, _SOPHTRON_KEYS)
                    continue
                if key not in known:
                    raise ConfigError(f'{where}: unknown key "{dotted}"', field=dotted)
                name, kind = known[key]
                try:
                    values[name] = _convert(kind, value)
                except ValueError:
                    raise ConfigError(
                        f"{where}: {dotted} {_KIND_HELP[kind]}", field=dotted
                    ) from None
                if line:
                    lines[name] = line

        take("", document, _TOP_KEYS)
        return cls(path, values, lines)


def _key_lines(text: str) -> dict[str, int]:
    """The line (1-based) of each dotted key in a TOML text (first occurrence)."""
    found: dict[str, int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        header = _HEADER.match(line)
        if header and "=" not in line.split("]", 1)[0]:
            table = header.group(1).strip().strip("\"'")
            found.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            name = next(group for group in key.groups() if group is not None)
            found.setdefault(f"{table}.{name}" if table else name, number)
    return found


def _convert(kind: str, value: Any) -> Any:
    if kind in {"text", "path"}:
        if not isinstance(value, str):
            raise ValueError(kind)
        return Path(value).expanduser() if kind == "path" else value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(kind)
        return value
    if kind == "seconds":
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(kind)
        return float(value)
    if kind == "time":
        if isinstance(value, dt.time):
            return value
        if isinstance(value, str):
            return dt.time.fromisoformat(value)
        raise ValueError(kind)
    raise ValueError(kind)  # pragma: no cover


@dataclass(frozen=True)
class Loaded:
    """What the edge of the program reads once: settings, the household named, warnings."""

    settings: Settings
    family: str | None = None
    config: ConfigFile | None = None
    warnings: tuple[str, ...] = ()


def config_path_for(
    flags: Mapping[str, Any], environ: Mapping[str, str], explicit: Path | None
) -> tuple[Path | None, bool]:
    """The config file to read and whether it was asked for (``--config`` / SOPHSYNC_CONFIG)."""
    if explicit is not None:
        return explicit.expanduser(), True
    if environ.get("SOPHSYNC_CONFIG"):
        return Path(environ["SOPHSYNC_CONFIG"]).expanduser(), True
    data_dir = flags.get("data_dir") or (
        Path(environ["SOPHSYNC_DATA_DIR"]).expanduser()
        if environ.get("SOPHSYNC_DATA_DIR")
        else default_data_dir()
    )
    return Path(data_dir) / CONFIG_NAME, False


def load(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> Loaded:
    """Flags over environment over the config file over defaults.

    The file is ``config_path`` (``--config``), else ``SOPHSYNC_CONFIG``, else ``config.toml``
    in the data directory when it exists. ``flags`` holds Settings fields and ``family``.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if environ is None else environ
    path, asked = config_path_for(flags, env, config_path)
    config: ConfigFile | None = None
    if path is not None and (asked or path.is_file()):
        config = ConfigFile.read(path)
    values: dict[str, Any] = dict(config.values) if config else {}
    file_values = dict(values)
    values.update(_env_values(env))
    values.update(flags)
    family = values.pop("family", None)
    env_family = env.get("SOPHSYNC_FAMILY")
    if "family" not in flags and env_family:
        family = env_family
    try:
        settings = Settings(**values)
    except BadInput as error:
        name = error.field
        if config and name in file_values and values.get(name) == file_values[name]:
            raise ConfigError(f"{config.where(name)}: {error}", field=name) from None
        raise
    warnings: list[str] = []
    if config and {"sophtron_access_key", "secret_key"} & set(config.values):
        try:
            mode = config.path.stat().st_mode
        except OSError:  # pragma: no cover - read a moment ago
            mode = 0
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"Warning: {config.path} holds a secret and others can read it; "
                f"run chmod 600 {config.path}"
            )
    return Loaded(settings, family, config, tuple(warnings))
