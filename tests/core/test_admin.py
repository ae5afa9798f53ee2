"""Key rotation, schema upgrades and settings validation."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from sophsync.core import credentials, secrets
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.errors import BadInput
from sophsync.sandbox import SandboxServer
from sophsync.settings import Settings
from sophsync.store import Vault, head_revision
from sophsync.store.engine import _alembic_config, create_engine, upgrade
from sophsync.store.models import Base, ProviderCredentials, RawPayload
from sophsync.store.vault import VaultError
from tests.conftest import ACCESS_KEY
from tests.core.conftest import connect_and_link

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


def stored_tokens(core: Core) -> list[bytes]:
    with core.session() as session:
        tokens = [row.access_key_enc for row in session.scalars(select(ProviderCredentials))]
        tokens += [row.body_enc for row in session.scalars(select(RawPayload))]
    return tokens


def test_key_file_is_private_and_rotation_reencrypts_everything(core: Core, admin: Actor) -> None:
    connect_and_link(core, admin, username="rotate")
    key_file = core.settings.key_file
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key_file.parent).st_mode) == 0o700
    old_key = key_file.read_text().strip()
    before = stored_tokens(core)

    result = secrets.rotate(core)

    new_key = key_file.read_text().strip()
    assert new_key != old_key
    assert "\n" not in new_key  # the old key is gone from the file
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    after = stored_tokens(core)
    assert result.tokens == len(after) == len(before)
    assert all(a != b for a, b in zip(after, before, strict=True))
    # The old key opens nothing any more; the new one opens everything.
    with pytest.raises(VaultError):
        Vault.from_secret(old_key).decrypt(after[0])
    fresh = Vault.from_key_file(key_file)
    assert fresh.decrypt_text(after[0]) == ACCESS_KEY
    assert credentials.credentials_status(core, admin) is not None


def test_rotation_with_environment_keys(
    make_core: Callable[..., Core], engine_sandbox: SandboxServer
) -> None:
    old = Fernet.generate_key().decode()
    core = make_core(engine_sandbox, secret_key=old)
    from sophsync.core import families

    admin = families.create_family(core, "Env keys", "env@example.com", "a long password")
    credentials.save_credentials(core, admin, "3f2504e0-4f89-11d3-9a0c-0305e82c3301", ACCESS_KEY)
    new = Fernet.generate_key().decode()
    rotated = make_core(engine_sandbox, secret_key=f"{new},{old}")
    assert secrets.rotate(rotated).tokens == 1
    only_new = make_core(engine_sandbox, secret_key=new)
    with credentials.family_client(only_new, admin.family_id) as client:  # decrypts
        assert client.health_check_auth() == "this is online."
    with pytest.raises(VaultError):
        credentials.family_client(make_core(engine_sandbox, secret_key=old), admin.family_id)
    assert not core.settings.key_file.exists()


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sophsync", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=ROOT,
        timeout=120,
    )


def test_cli_db_upgrade_and_secrets_rotate(database_url: str, tmp_path: Path) -> None:
    env = {"SOPHSYNC_DATABASE_URL": database_url, "SOPHSYNC_DATA_DIR": str(tmp_path / "d")}
    first = run("db", "upgrade", env=env)
    assert first.returncode == 0, first.stderr
    second = run("db", "upgrade", env=env)
    assert f"up to date (revision {head_revision()})" in second.stdout
    rotated = run("secrets", "rotate", env=env)
    assert rotated.returncode == 0, rotated.stderr
    assert "Re-encrypted 0 stored secret(s)" in rotated.stdout
    bad = run("--database-url", "mysql://nope", "db", "upgrade", env=env)
    assert bad.returncode == 2
    assert "SOPHSYNC_DATABASE_URL must start with sqlite:// or postgresql://" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    ("environ", "field"),
    [
        ({"SOPHSYNC_HISTORY_DAYS": "ten"}, "SOPHSYNC_HISTORY_DAYS"),
        ({"SOPHSYNC_HISTORY_DAYS": "5000"}, "history_days"),
        ({"SOPHSYNC_OVERLAP_DAYS": "-1"}, "overlap_days"),
        ({"SOPHSYNC_MONTHLY_BUDGET": "0"}, "monthly_budget"),
        ({"SOPHSYNC_SYNC_TIME": "six"}, "SOPHSYNC_SYNC_TIME"),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], field: str) -> None:
    with pytest.raises(BadInput) as caught:
        Settings.from_env(environ)
    assert caught.value.field == field


def test_settings_from_environment_and_flags(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "SOPHSYNC_DATA_DIR": str(tmp_path),
            "SOPHSYNC_HISTORY_DAYS": "30",
            "SOPHTRON_USER_ID": "u",
            "SOPHSYNC_SYNC_TIME": "07:30",
        },
        history_days=60,
    )
    assert settings.data_dir == tmp_path
    assert settings.history_days == 60  # the flag wins
    assert settings.sophtron_user_id == "u"
    assert settings.url == f"sqlite:///{tmp_path / 'sophsync.db'}"
    assert settings.embedded
    assert not Settings(database_url="postgresql://x/y").embedded


#: Indexes on an expression, which autogenerate cannot compare (SQLite's are not reflected, and
#: PostgreSQL gives back its own spelling of the expression): their tests are behavioural
#: (``test_jobs.py``: two defers at the same moment keep one waiting job).
EXPRESSION_INDEXES = {"uq_job_waiting_queueing_lock"}


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_migrations_build_the_schema_the_models_describe(core: Core) -> None:
    """Every model change has its migration: autogenerate finds nothing left to do (in
    sophsync's own tables: procrastinate's share the PostgreSQL database once its backend ran)."""

    def ours(name: str | None, kind: str, parents: dict[str, str | None]) -> bool:
        return kind != "table" or name in Base.metadata.tables

    def comparable(item: object, name: str | None, kind: str, *_: object) -> bool:
        return not (kind == "index" and name in EXPRESSION_INDEXES)

    with core.engine.connect() as connection:
        options = {"include_name": ours, "include_object": comparable}
        context = MigrationContext.configure(connection, opts=options)
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_the_upgrade_to_one_waiting_job_per_queueing_lock_keeps_the_first(
    database_url: str,
) -> None:
    """A database from before revision 0006 may hold two waiting jobs under one queueing lock
    (two defers at the same moment): the upgrade keeps the first, and every job that is not
    waiting, or has no queueing lock."""
    engine = create_engine(database_url)
    config = _alembic_config(engine)
    try:
        upgrade(engine)
        command.downgrade(config, "0005")
        rows = [
            ("sync", "q", "todo"),
            ("sync", "q", "todo"),
            ("sync", "q", "done"),
            ("sync", "other", "todo"),
            ("sync", None, "todo"),
            ("sync", None, "todo"),
        ]
        with engine.begin() as connection:
            for task, queueing_lock, state in rows:
                connection.execute(
                    text(
                        "INSERT INTO job (task, args, queueing_lock, state, run_at, attempts, "
                        "created_at) VALUES (:task, '{}', :queueing_lock, :state, :now, 0, :now)"
                    ),
                    {"task": task, "queueing_lock": queueing_lock, "state": state, "now": NOW},
                )
        upgrade(engine)
        with engine.connect() as connection:
            kept = connection.execute(
                text("SELECT id, queueing_lock, state FROM job ORDER BY id")
            ).all()
        assert [tuple(row) for row in kept] == [
            (1, "q", "todo"),
            (3, "q", "done"),
            (4, "other", "todo"),
            (5, None, "todo"),
            (6, None, "todo"),
        ]
    finally:
        engine.dispose()
