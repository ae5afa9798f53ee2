"""`sophsync simplefin`: setup tokens for SimpleFIN clients, the accesses they became, revoking.

The token goes to stdout alone, so that ``TOKEN=$(sophsync simplefin token)`` works; what to do
with it goes to stderr.
"""

from __future__ import annotations

import datetime as dt

import click

from ..bridges import simplefin as bridge
from ..settings import check_public_url
from .context import acting, emit, json_option, plain, print_table, settings_of


def _when(moment: dt.datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


@click.group()
def simplefin() -> None:
    """The SimpleFIN bridge: setup tokens and accesses.

    Any SimpleFIN client (Actual Budget, the Firefly III data importer, Home Assistant,
    beancount importers) reads the household's accounts from `sophsync serve` with a setup
    token made here.
    """


@simplefin.command("token")
@click.option(
    "--public-url",
    metavar="URL",
    help="The address clients reach `sophsync serve` at [default: SOPHSYNC_PUBLIC_URL, "
    f"else {bridge.DEFAULT_PUBLIC_URL}].",
)
@click.option("--label", default="", help="A name to recognise the client by in lists.")
@json_option
@click.pass_context
def token(ctx: click.Context, public_url: str | None, label: str, as_json: bool) -> None:
    """Print a new SimpleFIN setup token (shown once; a client claims it once, within 7 days)."""
    if public_url is not None:
        base = check_public_url(public_url, "--public-url")
    else:
        base = settings_of(ctx).public_url or bridge.DEFAULT_PUBLIC_URL
    with acting(ctx) as (core, actor):
        made = bridge.create_setup_token(core, actor, base, label)
    if as_json:
        emit(True, {**plain(made.access), "token": made.token})
        return
    click.echo(made.token)
    click.echo(
        f"Setup token {made.access.id} ({made.access.label}) for {base}: paste it into the "
        f"SimpleFIN client before {_when(made.access.expires_at)} UTC. It works once.",
        err=True,
    )


@simplefin.command("list")
@json_option
@click.pass_context
def list_accesses(ctx: click.Context, as_json: bool) -> None:
    """Setup tokens and SimpleFIN accesses: waiting, active, expired or revoked."""
    with acting(ctx) as (core, actor):
        views = bridge.list_accesses(core, actor)

    def show() -> None:
        print_table(
            "SimpleFIN accesses",
            ["ID", "Label", "State", "Created", "Claimed", "Last used", "Revoked"],
            [
                [
                    view.id,
                    view.label,
                    view.state.value,
                    _when(view.created_at),
                    _when(view.claimed_at),
                    _when(view.last_used_at),
                    _when(view.revoked_at),
                ]
                for view in views
            ],
            empty="No SimpleFIN access yet: create a setup token with `sophsync simplefin token`.",
        )

    emit(as_json, views, show)


@simplefin.command("revoke")
@click.argument("access_id", metavar="ID", type=click.IntRange(1, 2**31 - 1))
@click.pass_context
def revoke(ctx: click.Context, access_id: int) -> None:
    """Revoke an access (its client can no longer read) or a setup token not yet claimed."""
    with acting(ctx) as (core, actor):
        before = bridge.get_access(core, actor, access_id)
        view = bridge.revoke(core, actor, access_id)
    if before.state is bridge.State.REVOKED:
        click.echo(f"SimpleFIN access {view.id} ({view.label}) was revoked already.")
    else:
        click.echo(f"Revoked SimpleFIN access {view.id} ({view.label}): it reads nothing more.")
