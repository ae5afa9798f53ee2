"""Both clients over TLS: a server whose certificate nothing trusts is refused before any
request is sent, and one signed by a root named in ``SSL_CERT_FILE`` is trusted.

The server is a real HTTPS server on 127.0.0.1 with a certificate made here; it answers
``HealthCheckAuth`` as Sophtron does (the clients' requests are signed, not checked).
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sophsync.sophtron import AsyncClient, Client, RetryPolicy, SophtronConnectionError, _curl
from sophsync.sophtron import client as client_module
from tests.conftest import ACCESS_KEY, USER_ID

ONCE = RetryPolicy(attempts=1)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that signs itself, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sophsync test server")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Online(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'"this is online."'
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The API URL of an HTTPS server on 127.0.0.1, and its certificate."""
    cert_path, key_path = self_signed(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Online)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/api", cert_path
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fresh_tls_context() -> Iterator[None]:
    """Let the next clients read the trusted roots again (the process reads ``SSL_CERT_FILE``
    once), and leave them to be read afresh after the test."""
    client_module._build_tls_context.cache_clear()
    _curl.ca_roots.cache_clear()
    yield
    client_module._build_tls_context.cache_clear()
    _curl.ca_roots.cache_clear()


@pytest.fixture
def certifi_roots_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``SSL_CERT_FILE`` or ``SSL_CERT_DIR``: the clients trust certifi's roots alone."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.mark.usefixtures("fresh_tls_context", "certifi_roots_only")
def test_an_untrusted_certificate_is_refused_before_anything_is_sent(
    https_server: tuple[str, Path],
) -> None:
    url, _ = https_server
    with (
        Client(USER_ID, ACCESS_KEY, base_url=url, retry=ONCE) as client,
        pytest.raises(SophtronConnectionError) as raised,
    ):
        client.health_check_auth()
    assert raised.value.unsent is True
    assert "could not connect" in str(raised.value)


@pytest.mark.anyio
@pytest.mark.usefixtures("fresh_tls_context", "certifi_roots_only")
async def test_an_untrusted_certificate_is_refused_by_the_async_client(
    https_server: tuple[str, Path],
) -> None:
    url, _ = https_server
    async with AsyncClient(USER_ID, ACCESS_KEY, base_url=url, retry=ONCE) as client:
        with pytest.raises(SophtronConnectionError) as raised:
            await client.health_check_auth()
    assert raised.value.unsent is True


@pytest.mark.usefixtures("fresh_tls_context")
def test_a_root_named_in_ssl_cert_file_is_trusted(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, certificate = https_server
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    with Client(USER_ID, ACCESS_KEY, base_url=url, retry=ONCE) as client:
        assert client.health_check_auth() == "this is online."


@pytest.mark.anyio
@pytest.mark.usefixtures("fresh_tls_context")
async def test_a_root_named_in_ssl_cert_file_is_trusted_by_the_async_client(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, certificate = https_server
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    async with AsyncClient(USER_ID, ACCESS_KEY, base_url=url, retry=ONCE) as client:
        assert await client.health_check_auth() == "this is online."
