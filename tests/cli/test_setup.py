"""``sophsync init``, ``sophsync db copy`` and the config file, run as subprocesses."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pexpect
import psycopg
import pytest
import sqlalchemy as sa

from sophsync.core import accounts, credentials, families, sync
from sophsync.core.app import Core
from sophsync.sandbox import SandboxServer
from sophsync.settings import Settings
from sophsync.store import create_engine, upgrade
from sophsync.store.copy import verify
from sophsync.store.models import ProviderCredentials
from tests.conftest import ACCESS_KEY, USER_ID
from tests.core.conftest import POSTGRES, Clock, connect_and_link

ROOT = Path(__file__).resolve().parents[2]
SOPHSYNC = [sys.executable, "-m", "sophsync"]
PASSWORD = "correct horse battery"


def environment(**extra: str) -> dict[str, str]:
    """The test's environment without any sophsync or Sophtron variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPHSYNC_", "SOPHTRON_"))}
    env.update(extra)
    return env


def run(
    *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SOPHSYNC, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        input=input if input is not None else "",
        env=env if env is not None else environment(),
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped after the test."""
    name = f"sophsync_copy_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def row_counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as connection:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            name: connection.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
            for name in names
        }


# init ------------------------------------------------------------------------------------------


def test_init_with_password_stdin_twice_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ("--data-dir", str(data), "init", "--family", "The Smiths", "--email", "a@example.com")
    first = run(*args, "--password-stdin", input=PASSWORD + "\n")
    assert first.returncode == 0, first.stderr
    assert "Created the household 'The Smiths'" in first.stdout
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "secret.key").stat().st_mode & 0o777 == 0o600
    config = data / "config.toml"
    assert config.stat().st_mode & 0o777 == 0o600
    assert all(line.startswith("#") for line in config.read_text().splitlines() if line.strip()), (
        "the starter config sets nothing"
    )
    before = (
        (data / "secret.key").read_bytes(),
        config.read_bytes(),
        row_counts(data / "sophsync.db"),
    )
    assert before[2]["family"] == 1
    assert before[2]["user_account"] == 1

    second = run(*args[:2], "init", "--family", "Others", "--email", "b@example.com")
    assert second.returncode == 0, second.stderr
    assert "Created" not in second.stdout
    for thing in ("Data folder", "Key file", "Database", "Household", "Config file"):
        assert any(
            line.startswith(thing) and "already" in line for line in second.stdout.splitlines()
        ), (thing, second.stdout)
    after = (
        (data / "secret.key").read_bytes(),
        config.read_bytes(),
        row_counts(data / "sophsync.db"),
    )
    assert after == before
    core = Core.open(Settings(data_dir=data))
    try:
        actor = families.authenticate(core, "a@example.com", PASSWORD)
        assert [f.name for f in families.families(core)] == ["The Smiths"]
        assert actor.role == families.Role.ADMIN
    finally:
        core.close()


def test_init_without_a_terminal_needs_every_answer(tmp_path: Path) -> None:
    result = run("--data-dir", str(tmp_path / "data"), "init", "--family", "The Smiths")
    assert result.returncode == 2
    assert "--email" in one_line_error(result)


def test_init_interactive_asks_twice_for_a_hidden_password(tmp_path: Path) -> None:
    data = tmp_path / "data"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "sophsync", "--data-dir", str(data), "init"],
        env=environment(),
        cwd=str(ROOT),
        encoding="utf-8",
        timeout=60,
    )
    try:
        child.expect("Household name")
        child.sendline("The Joneses")
        child.expect("Admin email")
        child.sendline("jo@example.com")
        child.expect("Admin password")
        child.sendline(PASSWORD)
        child.expect("Repeat for confirmation")
        child.sendline("something else")
        child.expect("do not match")
        child.expect("Admin password")
        child.sendline(PASSWORD)
        child.expect("Repeat for confirmation")
        child.sendline(PASSWORD)
        child.expect("Created the household 'The Joneses'")
        child.expect(pexpect.EOF)
        transcript = child.before
    finally:
        child.close()
    assert child.exitstatus == 0
    assert PASSWORD not in transcript, "the password was echoed"
    core = Core.open(Settings(data_dir=data))
    try:
        families.authenticate(core, "jo@example.com", PASSWORD)
    finally:
        core.close()


def test_init_saves_sophtron_credentials_from_the_environment(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    data = tmp_path / "data"
    env = environment(
        SOPHTRON_USER_ID=USER_ID, SOPHTRON_ACCESS_KEY=ACCESS_KEY, SOPHTRON_BASE_URL=sandbox.url
    )
    args = ("--data-dir", str(data), "init", "--family", "F", "--email", "f@example.com")
    first = run(*args, "--password-stdin", input=PASSWORD + "\n", env=env)
    assert first.returncode == 0, first.stderr
    assert "Saved and verified the Sophtron credentials" in first.stdout
    assert ACCESS_KEY not in first.stdout + first.stderr
    second = run(*args, "--password-stdin", input=PASSWORD + "\n", env=env)
    assert second.returncode == 0, second.stderr
    assert "Sophtron credentials: already saved" in second.stdout


def test_init_on_postgresql(tmp_path: Path, empty_postgres: str) -> None:
    data = tmp_path / "data"
    args = ("--data-dir", str(data), "--database-url", empty_postgres, "init")
    first = run(
        *args,
        "--family",
        "P",
        "--email",
        "p@example.com",
        "--password-stdin",
        input="pw-pw-pw-pw\n",
    )
    assert first.returncode == 0, first.stderr
    assert "Created the database schema (PostgreSQL" in first.stdout
    assert not (data / "sophsync.db").exists()
    second = run(*args)
    assert second.returncode == 0, second.stderr
    assert "Household: already set up ('P')" in second.stdout


# db copy ---------------------------------------------------------------------------------------


def test_db_copy_moves_a_synced_sqlite_install_to_postgresql(
    tmp_path: Path, sandbox: SandboxServer, empty_postgres: str
) -> None:
    data = tmp_path / "data"
    fast = {"poll_interval": 0.001, "max_poll_interval": 0.005}
    source = Core.open(
        Settings(data_dir=data, sophtron_base_url=sandbox.url), clock=Clock(), **fast
    )
    try:
        admin = families.first_run(source, "The Smiths", "admin@example.com", PASSWORD)
        credentials.save_credentials(source, admin, USER_ID, ACCESS_KEY)
        view = connect_and_link(source, admin, username=f"copy-{uuid.uuid4().hex[:8]}")
        run_view = sync.sync_connection(
            source, view.id, poller=sync.Poller(interval=0, maximum=0, sleep=lambda s: None)
        )
        assert run_view.status.value == "succeeded", run_view
        before = accounts.list_transactions(source, admin, limit=1000)
        assert before
    finally:
        source.close()

    copied = run("--data-dir", str(data), "db", "copy", "--to", empty_postgres)
    assert copied.returncode == 0, copied.stderr
    assert "DIFFERENT" not in copied.stdout
    assert "bank_transaction" in copied.stdout
    assert "Copied and verified" in copied.stdout

    source_engine = create_engine(Settings(data_dir=data).url)
    target_engine = create_engine(empty_postgres)
    try:
        report = verify(source_engine, target_engine)
        with target_engine.connect() as connection:
            # Analysed by the copy, so the first pages use the indexes at once.
            analysed = connection.scalar(
                sa.text(
                    "SELECT last_analyze FROM pg_stat_user_tables "
                    "WHERE relname = 'bank_transaction'"
                )
            )
    finally:
        source_engine.dispose()
        target_engine.dispose()
    assert analysed is not None
    assert report.ok
    counts = {t.table: (t.source, t.target) for t in report.tables if t.copied}
    assert counts["bank_transaction"][0] > 0
    assert all(source_rows == target_rows for source_rows, target_rows in counts.values())
    assert any(m.what.startswith("bank_transaction") and m.source for m in report.money)

    target = Core.open(Settings(data_dir=data, database_url=empty_postgres), clock=Clock())
    try:
        actor = families.authenticate(target, "admin@example.com", PASSWORD)
        assert accounts.list_transactions(target, actor, limit=1000) == before
        with target.session() as session:
            saved = session.scalars(sa.select(ProviderCredentials)).one()
            assert target.vault.decrypt_text(saved.access_key_enc) == ACCESS_KEY
        # Sequences continue after the copied ids.
        other = families.create_family(target, "Others", "o@example.com", PASSWORD)
        assert other.family_id > actor.family_id
    finally:
        target.close()

    again = run("--data-dir", str(data), "db", "copy", "--to", empty_postgres)
    assert again.returncode != 0
    assert "already holds data" in one_line_error(again)


def test_db_copy_to_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    missing = POSTGRES.rsplit("/", 1)[0] + f"/sophsync_missing_{uuid.uuid4().hex[:8]}"
    result = run("--data-dir", str(tmp_path / "data"), "db", "copy", "--to", missing)
    assert result.returncode == 2
    assert "Cannot open the target database" in one_line_error(result)


# the config file -------------------------------------------------------------------------------


def test_config_precedence_flags_over_environment_over_file(tmp_path: Path) -> None:
    config = tmp_path / "sophsync.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "file.db"}"\n')
    data = ("--data-dir", str(tmp_path / "data"), "--config", str(config))

    assert run(*data, "db", "upgrade").returncode == 0
    assert (tmp_path / "file.db").exists()

    env = environment(SOPHSYNC_DATABASE_URL=f"sqlite:///{tmp_path / 'env.db'}")
    assert run(*data, "db", "upgrade", env=env).returncode == 0
    assert (tmp_path / "env.db").exists()

    flag = ("--database-url", f"sqlite:///{tmp_path / 'flag.db'}")
    assert run(*data, *flag, "db", "upgrade", env=env).returncode == 0
    assert (tmp_path / "flag.db").exists()
    assert not (tmp_path / "data" / "sophsync.db").exists()


def test_config_in_the_data_folder_names_the_household(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.toml").write_text('# the household\nfamily = "From The File"\n')
    args = ("--data-dir", str(data), "init", "--email", "a@example.com", "--password-stdin")
    result = run(*args, input=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert "Created the household 'From The File'" in result.stdout
    # SOPHSYNC_CONFIG points elsewhere: the data folder's file is not read.
    other = tmp_path / "other.toml"
    other.write_text("histroy_days = 3\n")
    bad = run("--data-dir", str(data), "db", "upgrade", env=environment(SOPHSYNC_CONFIG=str(other)))
    assert bad.returncode == 2
    assert 'other.toml line 1: unknown key "histroy_days"' in one_line_error(bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'database_url = "sqlite:///x.db"\n\n# typo\nhistroy_days = 30\n',
            'line 4: unknown key "histroy_days"',
        ),
        (
            'history_days = 30\n\nsync_time = "six"\n',
            "line 3: sync_time must be a time of day like 06:00",
        ),
        ("history_days = 5000\n", "line 1: history_days must be between 1 and"),
        ('[sophtron]\nuser_id = "x"\nsecret = "y"\n', 'line 3: unknown key "sophtron.secret"'),
        ('history_days = 30\njob_backend = "auto\n', "line 2:"),
    ],
    ids=["unknown-key", "bad-time", "out-of-range", "unknown-table-key", "toml-syntax"],
)
def test_bad_config_is_one_line_naming_the_key_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    result = run("--config", str(config), "--data-dir", str(tmp_path / "data"), "db", "upgrade")
    assert result.returncode == 2
    line = one_line_error(result)
    assert f"config.toml {message}" in line, line
    assert not (tmp_path / "data" / "sophsync.db").exists()


def test_a_missing_config_file_given_by_flag_is_an_error(tmp_path: Path) -> None:
    result = run("--config", str(tmp_path / "nope.toml"), "db", "upgrade")
    assert result.returncode == 2
    assert "does not exist" in one_line_error(result)


def test_warns_when_others_can_read_an_access_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "x.db"}"\n[sophtron]\naccess_key = "{ACCESS_KEY}"\n'
    )
    config.chmod(0o644)
    loose = run("--config", str(config), "db", "upgrade")
    assert loose.returncode == 0, loose.stderr
    assert "others can read it" in one_line_error(loose)
    config.chmod(0o600)
    tight = run("--config", str(config), "db", "upgrade")
    assert tight.returncode == 0
    assert tight.stderr == ""


def test_verify_reports_a_difference(tmp_path: Path) -> None:
    source = create_engine(f"sqlite:///{tmp_path / 'source.db'}")
    target = create_engine(f"sqlite:///{tmp_path / 'target.db'}")
    try:
        upgrade(source)
        upgrade(target)
        core = Core.open(Settings(data_dir=tmp_path, database_url=str(source.url)))
        try:
            families.first_run(core, "Only Here", "x@example.com", PASSWORD)
        finally:
            core.close()
        report = verify(source, target)
    finally:
        source.dispose()
        target.dispose()
    assert not report.ok
    assert [t.table for t in report.tables if not t.equal] == ["family", "user_account"]
