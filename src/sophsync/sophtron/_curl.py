"""The blocking client's HTTP transport: libcurl, through pycurl.

sophsync's worker runs hundreds of syncs at once in one process, each a handful of requests, and
the HTTP client's own work is the largest part of a sync's CPU. libcurl does the whole exchange
(connecting, sending, reading the status line and headers, decoding gzip) in C, and lets the
other threads run throughout: a request to the sandbox costs 89 us of CPU against 288 us through
urllib3 (docs/performance.md).

Kept-alive connections live in curl handles, which the process's clients share: a request takes
an idle handle set up as it needs (proxy, trusted roots, timeouts) and gives it back, so that
the syncs one after another reuse connections, and a handle's trusted roots are read once (they
take 3 to 4 ms of CPU to load and about 0.7 MB to hold). At most :data:`IDLE_HANDLES` are kept
idle for each set-up; there are never more in use than requests in flight.
"""

from __future__ import annotations

import functools
import io
import os
import threading
import urllib.parse
import urllib.request
from typing import NamedTuple

import certifi
import pycurl

#: Idle handles (each with its kept-alive connections) the process keeps for each set-up: as
#: many as a worker's default 64 job slots send at once.
IDLE_HANDLES = 64

#: libcurl's errors that come before anything was sent: the URL, the name, the connection, the
#: proxy or the TLS handshake failed.
_BEFORE_SENDING = frozenset(
    {
        pycurl.E_UNSUPPORTED_PROTOCOL,
        pycurl.E_URL_MALFORMAT,
        pycurl.E_COULDNT_RESOLVE_PROXY,
        pycurl.E_COULDNT_RESOLVE_HOST,
        pycurl.E_COULDNT_CONNECT,
        pycurl.E_SSL_CONNECT_ERROR,
        pycurl.E_SSL_CERTPROBLEM,
        pycurl.E_SSL_CIPHER,
        pycurl.E_PEER_FAILED_VERIFICATION,
        pycurl.E_SSL_CACERT_BADFILE,
    }
)


class Response(NamedTuple):
    status: int
    body: bytes
    retry_after: str | None


class TransportError(Exception):
    """A request that got no whole answer. ``unsent``: nothing reached the server (the
    connection could not be opened in time, or at all); ``timed_out``: the answer did not come
    in time."""

    def __init__(self, *, unsent: bool, timed_out: bool) -> None:
        super().__init__("unsent" if unsent else "timed out" if timed_out else "failed")
        self.unsent = unsent
        self.timed_out = timed_out


class _SetUp(NamedTuple):
    """What a handle is set up with once; a request sets the rest."""

    proxy: str | None
    cafile: str | None
    capath: str | None
    connect_ms: int
    total_ms: int


class Handles:
    """The process's idle handles of one set-up."""

    def __init__(self, setup: _SetUp) -> None:
        self._setup = setup
        self._idle: list[pycurl.Curl] = []
        self._lock = threading.Lock()
        #: Connections the handles have opened.
        self.opened = 0

    @property
    def idle(self) -> int:
        return len(self._idle)

    def take(self) -> pycurl.Curl:
        with self._lock:
            if self._idle:
                return self._idle.pop()  # the one used last: its connection is likeliest open
        setup = self._setup
        handle = pycurl.Curl()
        handle.setopt(pycurl.NOSIGNAL, 1)  # a worker's threads: no SIGALRM for timeouts
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        # One kept-alive connection a handle: a new one (to another host, or of its own for a
        # request that changes state) closes the one before.
        handle.setopt(pycurl.MAXCONNECTS, 1)
        handle.setopt(pycurl.ACCEPT_ENCODING, "gzip, deflate")
        # Explicitly: libcurl would otherwise read the proxy variables itself, with rules of
        # its own for NO_PROXY.
        handle.setopt(pycurl.PROXY, setup.proxy or "")
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, setup.connect_ms)
        handle.setopt(pycurl.TIMEOUT_MS, setup.total_ms)
        if setup.cafile is not None:
            handle.setopt(pycurl.CAINFO, setup.cafile)
            handle.setopt(pycurl.PROXY_CAINFO, setup.cafile)
        if setup.capath is not None:
            handle.setopt(pycurl.CAPATH, setup.capath)
            handle.setopt(pycurl.PROXY_CAPATH, setup.capath)
        return handle

    def give_back(self, handle: pycurl.Curl) -> None:
        """Keep a handle whose request is done for the next request."""
        opened = handle.getinfo(pycurl.NUM_CONNECTS)
        # Let go of the request's body and headers (a password, a signature) while idle.
        handle.setopt(pycurl.POSTFIELDS, b"")
        handle.unsetopt(pycurl.HTTPHEADER)
        with self._lock:
            self.opened += opened
            if len(self._idle) < IDLE_HANDLES:
                self._idle.append(handle)
                return
        handle.close()

    def discard(self, handle: pycurl.Curl) -> None:
        """Close a handle whose request failed: its connection is in an unknown state."""
        opened = handle.getinfo(pycurl.NUM_CONNECTS)
        with self._lock:
            self.opened += opened
        handle.close()

    def close_idle(self) -> None:
        """Close the idle handles and their connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for handle in idle:
            handle.close()


_HANDLES: dict[_SetUp, Handles] = {}
_HANDLES_LOCK = threading.Lock()
#: Handles a forked child inherited: never used nor closed there (closing one would end its
#: connections for the parent too, TLS ones with a goodbye on the wire).
_INHERITED: list[dict[_SetUp, Handles]] = []


def _forget_inherited() -> None:
    global _HANDLES
    _INHERITED.append(_HANDLES)
    _HANDLES = {}


os.register_at_fork(after_in_child=_forget_inherited)


def handles_for(setup: _SetUp) -> Handles:
    with _HANDLES_LOCK:
        handles = _HANDLES.get(setup)
        if handles is None:
            handles = _HANDLES[setup] = Handles(setup)
        return handles


def close_idle() -> None:
    """Close every idle connection of the process (the kept-alive ones of finished requests)."""
    with _HANDLES_LOCK:
        every = list(_HANDLES.values())
    for handles in every:
        handles.close_idle()


class Transport:
    """Sends a client's requests to the host of ``url``, directly or through the proxy the
    environment names for it (:func:`proxy_for`), on the process's handles.

    ``connect_seconds``: the most a new connection may take; ``read_seconds``: the most the
    answer may take once connected (libcurl bounds the whole request, so a request gives up
    after both together). ``None``: no limit (libcurl's own 300 s for a connection).
    """

    def __init__(self, url: str, connect_seconds: float | None, read_seconds: float | None) -> None:
        proxy = proxy_for(url)
        tls = urllib.parse.urlsplit(url).scheme == "https" or bool(
            proxy and proxy.startswith("https:")
        )
        cafile, capath = ca_roots() if tls else (None, None)
        self.handles = handles_for(
            _SetUp(
                proxy,
                cafile,
                capath,
                _ms(connect_seconds),
                0 if read_seconds is None else _ms((connect_seconds or 0) + read_seconds),
            )
        )

    def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, *, resend: bool
    ) -> Response:
        """One request. ``resend``: whether the request may go again unseen on a fresh
        connection when a kept-alive one turns out closed before any answer (libcurl does this
        by itself). A request that changes state must not, since the server may have acted on it
        before closing: it goes on a connection of its own instead.

        Raises :class:`TransportError`.
        """
        handle = self.handles.take()
        lines = [f"{name}: {value}" for name, value in headers.items()]
        lines.append("Expect:")  # no 100-continue round trip before a body
        if body is None and method != "POST":
            handle.setopt(pycurl.HTTPGET, 1)
        else:
            handle.setopt(pycurl.POSTFIELDS, body or b"")
            if body is None:
                lines.append("Content-Type:")  # not libcurl's form type for an empty POST
        if method in ("GET", "POST"):
            handle.unsetopt(pycurl.CUSTOMREQUEST)
        else:
            handle.setopt(pycurl.CUSTOMREQUEST, method)
        handle.setopt(pycurl.FRESH_CONNECT, 0 if resend else 1)
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.HTTPHEADER, lines)
        received = io.BytesIO()
        header_lines: list[bytes] = []
        handle.setopt(pycurl.WRITEFUNCTION, received.write)
        handle.setopt(pycurl.HEADERFUNCTION, header_lines.append)
        try:
            handle.perform()
        except pycurl.error as error:
            code = error.args[0]
            unsent = code in _BEFORE_SENDING or (
                code == pycurl.E_OPERATION_TIMEDOUT and handle.getinfo(pycurl.PRETRANSFER_TIME) == 0
            )
            self.handles.discard(handle)
            raise TransportError(
                unsent=unsent, timed_out=code == pycurl.E_OPERATION_TIMEDOUT
            ) from None
        status = handle.getinfo(pycurl.RESPONSE_CODE)
        self.handles.give_back(handle)
        return Response(status, received.getvalue(), _retry_after(header_lines))


def _ms(seconds: float | None) -> int:
    """Seconds as libcurl's milliseconds, where 0 means no limit."""
    return 0 if seconds is None else max(1, round(seconds * 1000))


def _retry_after(header_lines: list[bytes]) -> str | None:
    """The ``Retry-After`` of the last answer's headers (a proxy's own answer to a tunnel, or an
    interim one, comes before it)."""
    value = None
    for line in header_lines:
        if line.startswith(b"HTTP/"):
            value = None
        elif line[:12].lower() == b"retry-after:":
            value = line[12:].strip().decode("latin-1")
    return value


@functools.cache
def ca_roots() -> tuple[str | None, str | None]:
    """The roots a TLS connection trusts, as the async client's httpx reads them: the file that
    ``SSL_CERT_FILE`` names, else the folder ``SSL_CERT_DIR`` names, else certifi's bundle.
    Read once in a process."""
    if cafile := os.environ.get("SSL_CERT_FILE"):
        return cafile, None
    if capath := os.environ.get("SSL_CERT_DIR"):
        return None, capath
    return certifi.where(), None


@functools.cache
def proxy_for(url: str) -> str | None:
    """The proxy that ``HTTPS_PROXY``, ``HTTP_PROXY`` or ``ALL_PROXY`` names for ``url``, unless
    ``NO_PROXY`` names its host, as httpx and requests read them. Read once per URL in a
    process: reading the environment costs more than the rest of making a client."""
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme or "https") or proxies.get("all")
    if not proxy or (parts.hostname and urllib.request.proxy_bypass(parts.hostname)):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"
