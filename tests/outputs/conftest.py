"""Fixtures for the outputs: a household with a synced history, read by every output test."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sophsync.core import sync
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.exporters.source import Selection, select_outputs
from tests.core.conftest import (  # noqa: F401 - fixtures shared with the core tests
    FAST,
    admin,
    backend,
    clock,
    connect_and_link,
    core,
    database_url,
    engine_sandbox,
    make_core,
    member,
    postgres_url,
)


@dataclass
class Household:
    """A family with two banks connected, every account linked and synced."""

    core: Core
    admin: Actor

    def selection(self) -> Selection:
        return select_outputs(self.core, self.admin)


@pytest.fixture
def household(core: Core, admin: Actor) -> Household:  # noqa: F811
    connect_and_link(core, admin)
    connect_and_link(core, admin, name="Sophtron Bank", username="jones")
    sync.sync_family(core, admin, poller=FAST)
    return Household(core, admin)
