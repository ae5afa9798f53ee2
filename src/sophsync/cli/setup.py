"""``sophsync init``: the data folder, key file, database, first household and config file."""

from __future__ import annotations

import os
import sys

import click

from ..core import credentials, families
from ..core.app import Core
from ..errors import BadInput
from ..settings import CONFIG_NAME, Settings
from ..store import upgrade_url
from .context import family_of, settings_of

STARTER_CONFIG = """\
# sophsync configuration (TOML). Command-line flags win over environment variables, which win
# over this file. Every key is optional; remove the leading "# " to set one.
# See docs/cli.md ("The config file") for every key.

# The household the command line acts on (when the database holds several).
# family = "{family}"

# database_url = "postgresql://sophsync@localhost/sophsync"   # default: SQLite in this folder
# history_days = 120            # days of history a newly linked account imports
# overlap_days = 30             # days each sync reads again
# monthly_budget = 10000        # Sophtron requests a household may spend a month
# sync_time = "06:00"           # time of day (UTC) of the daily sync
# job_backend = "auto"          # auto, local or procrastinate
# job_stall_seconds = 60
# connect_timeout_seconds = 240

# [sophtron]
# user_id = "..."               # Developer Profile > Direct Auth on sophtron.com
# access_key = "..."            # keep this file private (chmod 600) if you set it
# base_url = "https://api.sophtron.com/api"
"""


def _read_password_stdin() -> str:
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise BadInput("--password-stdin read an empty password", field="password")
    return password


@click.command()
@click.option("--family", "family_name", metavar="NAME", help="Name of the first household.")
@click.option("--email", metavar="EMAIL", help="Email of the household's first admin.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the admin's password from the first line of stdin (for scripts).",
)
@click.pass_context
def init(
    ctx: click.Context, family_name: str | None, email: str | None, password_stdin: bool
) -> None:
    """Set up sophsync: data folder, key file, database, first household and admin.

    Asks for anything missing when run in a terminal; scripts pass --family, --email and
    --password-stdin. Saves the Sophtron credentials when SOPHTRON_USER_ID and
    SOPHTRON_ACCESS_KEY (or the config file's [sophtron] table) give them, and writes a
    commented config.toml in the data folder. Running it again changes nothing.
    """
    settings = settings_of(ctx)
    say = click.echo
    data_dir = settings.data_dir
    if data_dir.is_dir():
        say(f"Data folder {data_dir}: already there.")
    else:
        data_dir.mkdir(mode=0o700, parents=True)
        os.chmod(data_dir, 0o700)
        say(f"Created the data folder {data_dir} (only you can read it).")

    if settings.secret_key:
        say("Secret key: SOPHSYNC_SECRET_KEY (no key file needed).")
    elif settings.key_file.exists():
        say(f"Key file {settings.key_file}: already there.")
    else:
        say(f"Created the key file {settings.key_file}: back it up with the database.")

    before, after = upgrade_url(settings.url)
    where = "SQLite in the data folder" if settings.embedded else "PostgreSQL"
    if before == after:
        say(f"Database ({where}): already up to date (revision {after}).")
    else:
        say(f"Created the database schema ({where}, revision {after}).")

    core = Core.open(settings, migrate=False)  # creates the key file when it is missing
    try:
        _household(core, settings, ctx, family_name, email, password_stdin)
    finally:
        core.close()
    _starter_config(settings, family_name or family_of(ctx))


def _household(
    core: Core,
    settings: Settings,
    ctx: click.Context,
    family_name: str | None,
    email: str | None,
    password_stdin: bool,
) -> None:
    say = click.echo
    if families.is_set_up(core):
        names = ", ".join(repr(family.name) for family in families.families(core))
        say(f"Household: already set up ({names}).")
        actor = families.family_admin(core, families.families(core)[0].id)
    else:
        family_name = family_name or family_of(ctx)
        interactive = sys.stdin.isatty() and not password_stdin
        if not interactive and not (family_name and email and password_stdin):
            raise BadInput(
                "Give --family NAME, --email EMAIL and --password-stdin (stdin is not a "
                "terminal, so sophsync cannot ask)",
                field="family" if not family_name else "email" if not email else "password",
            )
        if family_name is None:
            family_name = click.prompt("Household name")
        if email is None:
            email = click.prompt("Admin email")
        if password_stdin:
            password = _read_password_stdin()
        else:
            password = click.prompt("Admin password", hide_input=True, confirmation_prompt=True)
        actor = families.first_run(core, family_name, email, password)
        say(f"Created the household {family_name!r} with the admin {actor.email}.")
    status = credentials.credentials_status(core, actor)
    if status is not None:
        say("Sophtron credentials: already saved.")
    elif settings.sophtron_user_id and settings.sophtron_access_key:
        credentials.save_credentials(core, actor)
        say("Saved and verified the Sophtron credentials.")
    else:
        say(
            "Sophtron credentials: not saved (set SOPHTRON_USER_ID and SOPHTRON_ACCESS_KEY and "
            "run init again, or use the web app)."
        )


def _starter_config(settings: Settings, family_name: str | None) -> None:
    path = settings.data_dir / CONFIG_NAME
    if path.exists():
        click.echo(f"Config file {path}: already there.")
        return
    text = STARTER_CONFIG.format(family=(family_name or "The Smiths").replace('"', ""))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    click.echo(f"Wrote a starter config file {path} (every line commented).")
