"""The Prefect server and worker of a local stack, as background process groups.

Each starts in its own session (``down`` stops the whole group) with SIGINT and SIGTERM
reset to their defaults before exec: a process started from a script with ``&`` inherits
SIGINT ignored, and a Prefect worker started that way would not stop on either signal.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from sandbox.processes import alive, start_ticks

PREFERRED_PORT = 4200  # Prefect's own default: the UI address people expect


class ServiceError(RuntimeError):
    pass


def free_port(preferred: int | None = PREFERRED_PORT) -> int:
    """``preferred`` when nothing listens on it, else any free port of 127.0.0.1."""
    candidates = [preferred, 0] if preferred else [0]
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise ServiceError("no free port on 127.0.0.1")


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(command: list[str], env: dict[str, str], log: Path, cwd: Path) -> dict[str, int]:
    """Start ``command`` detached, output to ``log``; returns its pid (= process group) and
    its start time, which ``stop`` checks before signalling."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
    return {"pid": process.pid, "started": start_ticks(process.pid) or 0}


def wait_healthy(url: str, pid: int, timeout: float, log: Path) -> float:
    """Poll ``url`` until it answers 200; returns the seconds it took."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if not alive(pid):
            raise ServiceError(f"exited before {url} answered; see {log}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - began
        except OSError:
            pass
        time.sleep(0.25)
    raise ServiceError(f"{url} did not answer within {timeout:.0f}s; see {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
