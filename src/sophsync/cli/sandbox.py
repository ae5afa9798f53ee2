"""``sophsync sandbox``: serve a local Sophtron."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

import click
import uvicorn

from ..sandbox import FaultSpec, RateLimit, SandboxConfig, create_app, new_credentials
from ..sophtron.auth import decode_access_key
from ..sophtron.errors import InvalidAccessKey

T = TypeVar("T")


def parsed_by(
    parse: Callable[[str], T],
) -> Callable[[click.Context, click.Parameter, str | None], T | None]:
    """A click callback that parses an option with ``parse``; its ValueError names the problem."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> T | None:
        try:
            return parse(value) if value else None
        except ValueError as error:
            raise click.BadParameter(str(error)) from None

    return callback


@click.command(short_help="Serve a local Sophtron (the sandbox).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8111,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--user-id",
    envvar="SOPHTRON_USER_ID",
    help="Developer User ID the sandbox "
    "accepts [env SOPHTRON_USER_ID; default: a new one, printed].",
)
@click.option(
    "--access-key",
    envvar="SOPHTRON_ACCESS_KEY",
    help="Its base64 Access Key [env SOPHTRON_ACCESS_KEY; default: a new one, printed].",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the world: institutions, accounts, transactions, ids, faults.",
)
@click.option(
    "--job-seconds",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds each job step takes (0 for tests).",
)
@click.option(
    "--mfa-timeout",
    default=300.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds a job waits for an MFA answer before it fails with Timeout.",
)
@click.option(
    "--faults",
    "faults",
    callback=parsed_by(FaultSpec.parse),
    metavar="SPEC",
    help="Inject faults, e.g. '429=0.05,500=0.02,drop=0.01,retry-after=1'. Kinds: 429, "
    "500, 502, 503, slow, drop, malformed.",
)
@click.option(
    "--rate-limit",
    callback=parsed_by(RateLimit.parse),
    metavar="N/UNIT",
    help="Answer 429 past N requests per user id per SEC, MIN, HOUR or DAY.",
)
@click.option(
    "--strict-auth",
    is_flag=True,
    help="Accept only the official signing rule (last path segment plus query).",
)
@click.option(
    "--today",
    type=click.DateTime(["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="Fix the world's date (default: today, UTC).",
)
def sandbox(
    host: str,
    port: int,
    user_id: str | None,
    access_key: str | None,
    seed: int,
    job_seconds: float,
    mfa_timeout: float,
    faults: FaultSpec | None,
    rate_limit: RateLimit | None,
    strict_auth: bool,
    today: dt.datetime | None,
) -> None:
    """Serve a local Sophtron at http://HOST:PORT/api.

    It speaks Sophtron's v1 and v2 API with the seven test banks (Sophtron Bank, ... NoMFA,
    ... Captcha, ... SecurityQuestion, ... SecurityQuestion Multiple, ... Token, ... TokenRead)
    and a generated catalogue of over a thousand institutions. Admin routes for tests:
    GET /_sandbox/stats, GET /_sandbox/truth, POST /_sandbox/advance. See docs/sandbox.md.
    """
    if bool(user_id) != bool(access_key):
        raise click.UsageError("Give both --user-id and --access-key, or neither.")
    generated = not user_id or not access_key
    if not user_id or not access_key:
        user_id, access_key = new_credentials()
    try:
        decode_access_key(access_key)
    except InvalidAccessKey as error:
        raise click.BadParameter(str(error), param_hint="--access-key") from None
    config = SandboxConfig(
        users={user_id: access_key},
        seed=seed,
        job_seconds=job_seconds,
        mfa_timeout=mfa_timeout,
        faults=faults,
        rate_limit=rate_limit,
        strict_auth=strict_auth,
        today=today.date() if today else None,
    )
    app = create_app(config)
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"Sophtron sandbox: http://{shown_host}:{port}/api")
    click.echo(f"  User ID:    {user_id}")
    click.echo(f"  Access Key: {access_key if generated else '(as given)'}")
    click.echo(
        f"  World date {app.state.today}, seed {seed}, {len(app.state.catalogue)} "
        f"institutions, job steps {job_seconds:g} s"
        + (f", faults {faults}" if faults else "")
        + (f", rate limit {rate_limit}" if rate_limit else "")
        + (", strict auth" if strict_auth else "")
    )
    click.echo("  Press Ctrl+C to stop.")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
