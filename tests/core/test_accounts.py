"""Reading the local copy as a member, editing as an admin, and unsupported MFA."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import pytest

from sophsync.core import accounts, connect, families, sync
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.errors import BadInput, NotFound, PermissionDenied
from sophsync.sandbox import SandboxServer
from sophsync.sophtron import Client, Job, job_status
from sophsync.store.models import AccountType, Connection, ConnectionStatus
from tests.core.conftest import FAST, Clock, advance, connect_and_link


def synced(core: Core, admin: Actor, username: str = "reader+daily=3") -> int:
    view = connect_and_link(core, admin, username=username)
    assert sync.sync_connection(core, view.id, poller=FAST).added > 0
    return view.id


def test_members_read_accounts_and_transactions(core: Core, admin: Actor, member: Actor) -> None:
    synced(core, admin)
    mine = accounts.list_accounts(core, member)
    assert len(mine) == 6
    assert {a.type for a in mine} == {
        AccountType.DEPOSITORY,
        AccountType.CREDIT_CARD,
        AccountType.LOAN,
        AccountType.INVESTMENT,
        AccountType.OTHER,
    }
    assert all(a.linked for a in mine)
    rows = accounts.list_transactions(core, member, limit=1000)
    assert rows
    assert [(r.date, r.id) for r in rows] == sorted(((r.date, r.id) for r in rows), reverse=True)
    with pytest.raises(PermissionDenied):
        accounts.update_account(core, member, mine[0].id, name="Mine")
    with pytest.raises(PermissionDenied):
        accounts.delete_transaction(core, member, rows[0].id)
    other = families.create_family(core, "Others", "other@example.com", "a long password")
    assert accounts.list_accounts(core, other) == []
    assert accounts.list_transactions(core, other) == []
    with pytest.raises(NotFound):
        accounts.list_transactions(core, other, account_id=mine[0].id)
    with pytest.raises(NotFound):
        accounts.delete_transaction(core, other, rows[0].id)


def test_filters_and_cursor_pagination(core: Core, admin: Actor) -> None:
    synced(core, admin)
    everything = accounts.list_transactions(core, admin, limit=1000)
    pages: list[accounts.TransactionView] = []
    after = None
    while True:
        page = accounts.list_transactions(core, admin, after_id=after, limit=25)
        if not page:
            break
        pages.extend(page)
        after = page[-1].id
    assert [r.id for r in pages][: len(everything)] == [r.id for r in everything]
    assert len({r.id for r in pages}) == len(pages) > len(everything) - 1
    checking = accounts.list_accounts(core, admin)[0].id
    only = accounts.list_transactions(core, admin, account_id=checking, limit=1000)
    assert {r.account_id for r in only} == {checking}
    day = everything[len(everything) // 2].date
    window = accounts.list_transactions(core, admin, start=day, end=day, limit=1000)
    assert window
    assert {r.date for r in window} == {day}
    pending = accounts.list_transactions(core, admin, pending=True, limit=1000)
    assert all(r.pending for r in pending)
    with pytest.raises(BadInput) as caught:
        accounts.list_transactions(core, admin, limit=0)
    assert caught.value.field == "limit"
    with pytest.raises(BadInput):
        accounts.list_transactions(core, admin, start=day, end=day - dt.timedelta(days=1))


def test_a_deleted_transaction_stays_deleted_across_syncs(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    connection_id = synced(core, admin)
    victim = accounts.list_transactions(core, admin, limit=1)[0]
    accounts.delete_transaction(core, admin, victim.id)
    advance(engine_sandbox, clock, 2)
    run = sync.sync_connection(core, connection_id, poller=FAST)
    assert run.status.value == "succeeded"
    visible = {r.id for r in accounts.list_transactions(core, admin, limit=1000)}
    assert victim.id not in visible
    same = [
        r
        for r in accounts.list_transactions(core, admin, limit=1000)
        if r.provider_id == victim.provider_id
    ]
    assert same == []  # not re-created either


def test_admin_edits_an_account(core: Core, admin: Actor) -> None:
    synced(core, admin)
    card = next(a for a in accounts.list_accounts(core, admin) if a.type is AccountType.CREDIT_CARD)
    changed = accounts.update_account(
        core, admin, card.id, name=" Family Visa ", subtype="Rewards", invert_sign=True
    )
    assert changed.name == "Family Visa"
    assert changed.subtype == "Rewards"
    assert changed.invert_sign
    assert changed.balance_minor == -card.balance_minor
    with pytest.raises(BadInput):
        accounts.update_account(core, admin, card.id, name="  ")
    with pytest.raises(BadInput):
        accounts.update_account(
            core, admin, card.id, sync_start_date=core.today() + dt.timedelta(days=1)
        )


def test_a_prompt_sophsync_cannot_show_is_unsupported_mfa(
    core: Core, admin: Actor, clock: Clock
) -> None:
    view = connect.start_connection(
        core,
        admin,
        "926623ca-5952-4921-8f77-2023f1cdde8e",
        "waiting",
        "pw",
        institution_name="Sophtron Bank NoMFA",
    )
    job = Job.model_validate(
        {
            "JobID": "j",
            "LastStep": "SingleAccountSelect",
            "LastStatus": "Waiting",
            "SuccessFlag": None,
        }
    )
    client = cast(Client, None)  # not used: nothing is discovered

    def apply() -> Any:
        with core.session() as session:
            connection = session.get(Connection, view.id)
            assert connection is not None
            connect.apply_job_status(core, session, client, connection, job_status(job))
            return connection.status, connection.last_error_code

    assert apply() == (ConnectionStatus.CONNECTING.value, None)  # a moment of waiting is fine
    clock.advance(seconds=connect.UNSUPPORTED_AFTER + 1)
    assert apply() == (ConnectionStatus.FAILED.value, "unsupported_mfa")
    assert "cannot show" in connect.get_connection(core, admin, view.id).message
