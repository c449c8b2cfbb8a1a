"""One Prefect server for the whole end-to-end tier, on PostgreSQL when this machine has it.

Prefect's SQLite database answers concurrent writes with HTTP 503 ("database is locked")
and the client backs off 2 s, then 4 s: a platform run on it is seconds slower, and by
how much varies from run to run. PostgreSQL 15's server programs are part of this
machine's image, so the tier starts a throwaway cluster on 127.0.0.1 (as the postgres user
when run as root: initdb refuses root), a ``prefect server start`` on it, and stops both
afterwards. Without PostgreSQL it falls back to Prefect's SQLite test server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

STARTUP_SECONDS = 120


def postgres_bin() -> Path | None:
    """Where initdb, pg_ctl and createdb are: Debian's versioned folder, else the PATH."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/createdb"))
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("createdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_owner(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    if os.geteuid() == 0 and shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class Postgres:
    """A running cluster: ``database(name)`` creates a database and gives its URL."""

    def __init__(self, binaries: Path, port: int):
        self.binaries, self.port = binaries, port

    def url(self, name: str = "postgres") -> str:
        return f"postgresql+asyncpg://prefect@127.0.0.1:{self.port}/{name}"

    def database(self, name: str) -> str:
        createdb = [str(self.binaries / "createdb"), "-h", "127.0.0.1", "-p", str(self.port)]
        subprocess.run([*createdb, "-U", "prefect", name], check=True, capture_output=True)
        return self.url(name)


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster. Its folder is one the postgres user can reach
    (pytest's own are private to their owner)."""
    binaries = postgres_bin()
    assert binaries is not None
    folder = Path(tempfile.mkdtemp(prefix="platform-postgres-"))
    data, port = folder / "data", _free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(
        _as_owner([str(binaries / "initdb"), "-D", str(data), "-U", "prefect", "--auth=trust"]),
        **run,
    )
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {folder} -c max_connections=200"
    pg_ctl = [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w"]
    subprocess.run(_as_owner([*pg_ctl, "-o", options, "start"]), **run)
    try:
        yield Postgres(binaries, port)
    finally:
        subprocess.run(_as_owner([*pg_ctl, "-m", "fast", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def prefect_server(folder: Path, database_url: str, **settings: str) -> Iterator[str]:
    """``prefect server start`` on ``database_url`` with more ``PREFECT_*`` settings;
    yields its API URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(folder / "home"),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=database_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_UI_ENABLED="false",
        **settings,
    )
    prefect = str(Path(sys.executable).with_name("prefect"))
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(url, process, folder / "server.log")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited: {log.read_text()[-2000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/health", timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"prefect server not healthy after {STARTUP_SECONDS}s: {log}")
