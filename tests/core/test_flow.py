"""The whole engine flow on both databases: connect with MFA, link, sync, advance, sync."""

from __future__ import annotations

from sophsync.core import sync
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.sandbox import SandboxServer
from sophsync.store.models import ConnectionStatus, RunStatus
from tests.core.conftest import FAST, Clock, advance, connect_and_link, local_copy, sandbox_copy


def test_connect_link_sync_equals_truth(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock, backend: str
) -> None:
    view = connect_and_link(core, admin, name="Sophtron Bank", username="smith+years=0.5")
    assert view.status is ConnectionStatus.CONNECTED
    first = sync.sync_connection(core, view.id, poller=FAST)
    assert first.status is RunStatus.SUCCEEDED
    assert first.added > 100
    assert local_copy(core) == sandbox_copy(engine_sandbox)

    again = sync.sync_connection(core, view.id, poller=FAST)
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    assert again.unchanged > 0

    advance(engine_sandbox, clock, 6)
    later = sync.sync_connection(core, view.id, poller=FAST)
    assert later.status is RunStatus.SUCCEEDED
    assert later.added > 0
    # One refresh, at least one poll, one accounts read, one read per linked account.
    assert later.requests >= 6 + 3
    assert local_copy(core) == sandbox_copy(engine_sandbox)
