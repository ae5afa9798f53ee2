"""Fixtures for the web app: a real server on 127.0.0.1 over a Core and a sandbox."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Self

import httpx
import pytest
import uvicorn
from fastapi.routing import APIRoute
from starlette.routing import Match

from sophsync.core.app import Core
from sophsync.jobs import LocalQueue
from sophsync.sandbox import SandboxServer
from sophsync.web import create_app
from sophsync.web.threads import marked
from tests.core.conftest import (  # noqa: F401 - fixtures shared with the core tests
    backend,
    clock,
    database_url,
    engine_sandbox,
    make_core,
    postgres_url,
)


class AppServer:
    """An ASGI app served by uvicorn on a free port of 127.0.0.1, in a thread."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._socket])), daemon=True
        )

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


class WebServer(AppServer):
    """The web app over a core, with its local job queue."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.queue = LocalQueue(core)
        super().__init__(create_app(core, queue=self.queue))

    def client(self, **kwargs: Any) -> httpx.Client:
        """A client as a browser on the same site would be (cookies kept)."""
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)


@pytest.fixture
def web(
    make_core: Callable[..., Core],  # noqa: F811 - the core tests' fixture, requested here
    engine_sandbox: SandboxServer,  # noqa: F811
) -> Iterator[WebServer]:
    server = WebServer(make_core(engine_sandbox)).start()
    yield server
    server.stop()


# --- which routes reach Sophtron --------------------------------------------------------------


def sophtron_requests(sandbox: SandboxServer) -> int:
    """Requests the sandbox has answered so far."""
    return int(httpx.get(f"{sandbox.root}/_sandbox/stats").json()["total"])


def routes_of(routes: list[Any]) -> Iterator[Any]:
    """Every route, those of included routers walked into (in place of the router)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from routes_of(list(included.routes))
        else:
            yield route


def endpoint_of(app: Any, method: str, path: str) -> Any:
    """The function of the app's route for ``method`` and ``path``."""
    scope = {"type": "http", "method": method, "path": path.split("?")[0]}
    for route in routes_of(list(app.routes)):
        if isinstance(route, APIRoute) and route.matches(scope)[0] is Match.FULL:
            return route.endpoint
    raise AssertionError(f"no route for {method} {path}")


def reaching_sophtron(
    app: Any, sandbox: SandboxServer, calls: list[tuple[str, str, Callable[[], object]]]
) -> dict[str, bool]:
    """Make each (method, path, call) in turn, one at a time: ``{"METHOD path": marked}`` for
    those during which the sandbox answered a request, with whether the route is marked
    :func:`~sophsync.web.threads.waits_on_sophtron`."""
    found = {}
    for method, path, call in calls:
        before = sophtron_requests(sandbox)
        call()
        if sophtron_requests(sandbox) > before:
            found[f"{method} {path}"] = marked(endpoint_of(app, method, path))
    return found
