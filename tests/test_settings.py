"""Settings: flags over environment over the config file over defaults."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sophsync.settings import ConfigError, Settings, load


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_flags_over_environment_over_file_over_defaults(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.toml",
        'history_days = 10\noverlap_days = 5\nsync_time = 07:30:00\nfamily = "File"\n'
        '[sophtron]\nuser_id = "from-file"\nbase_url = "http://file"\n',
    )
    env = {
        "SOPHSYNC_OVERLAP_DAYS": "6",
        "SOPHTRON_BASE_URL": "http://env",
        "SOPHSYNC_FAMILY": "Env",
    }
    loaded = load({"family": None}, env, config)
    assert loaded.settings.history_days == 10
    assert loaded.settings.overlap_days == 6
    assert loaded.settings.sync_time == dt.time(7, 30)
    assert loaded.settings.sophtron_user_id == "from-file"
    assert loaded.settings.sophtron_base_url == "http://env"
    assert loaded.settings.monthly_budget == Settings().monthly_budget
    assert loaded.family == "Env"
    assert load({}, {}, config).family == "File"
    flagged = load({"history_days": 20, "family": "Flag"}, env, config)
    assert flagged.settings.history_days == 20
    assert flagged.family == "Flag"
    assert Settings.load({}, {}, config).history_days == 10


def test_the_data_folder_file_is_read_when_present(tmp_path: Path) -> None:
    assert load({"data_dir": tmp_path}, {}).config is None
    write(tmp_path / "config.toml", 'sync_time = "05:15"\n')
    loaded = load({}, {"SOPHSYNC_DATA_DIR": str(tmp_path)})
    assert loaded.settings.sync_time == dt.time(5, 15)
    assert loaded.settings.data_dir == tmp_path


def test_from_env_still_works() -> None:
    settings = Settings.from_env({"SOPHSYNC_HISTORY_DAYS": "9"}, overlap_days=3)
    assert (settings.history_days, settings.overlap_days) == (9, 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\n\nhistory_days = true\n", "c.toml line 3: history_days must be a whole number"),
        (
            "job_stall_seconds = -1\n",
            "c.toml line 1: job_stall_seconds must be a number of seconds",
        ),
        ("[other]\nx = 1\n", 'c.toml line 1: unknown key "other"'),
        ("overlap_days = 400\n", "c.toml line 1: overlap_days must be between 0 and 365"),
        ("a = [\n", "c.toml line 1:"),
    ],
)
def test_errors_name_the_key_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load({}, {}, write(tmp_path / "c.toml", text))
    assert str(raised.value).startswith(message), str(raised.value)
    assert raised.value.exit_code == 2


def test_an_environment_value_out_of_range_is_not_blamed_on_the_file(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "overlap_days = 3\n")
    with pytest.raises(Exception, match=r"^overlap_days must be") as raised:
        load({}, {"SOPHSYNC_OVERLAP_DAYS": "999"}, config)
    assert not isinstance(raised.value, ConfigError)


def test_secret_in_a_file_others_can_read_warns(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", 'secret_key = "k"\n')
    assert load({}, {}, config).warnings == ()
    config.chmod(0o640)
    assert "others can read it" in load({}, {}, config).warnings[0]
