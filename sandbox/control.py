"""``platformctl sandbox up | down | status``: the sandbox as a background process.

``up`` starts ``python -m sandbox`` detached in its own session, waits until it has written
its state file (all servers healthy) and returns; a second ``up`` finds it running and
changes nothing. ``down`` stops it and checks that none of its ports still listens.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from sandbox.processes import alive, stop_group
from sandbox.settings import SandboxSettings

STATE_FILE = "state.json"
SETTINGS_FILE = "settings.yaml"
LOG_FILE = "sandbox.log"
URL_KEYS = ("aws_endpoint_url", "kube_url", "chart_repository", "control_url")


class SandboxError(RuntimeError):
    pass


def default_state_dir() -> Path:
    override = os.environ.get("PLATFORM_SANDBOX_DIR")
    return Path(override) if override else Path.cwd() / ".sandbox"


def read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _listening(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=0.5):
            return True
    except OSError:
        return False


def running(state_dir: Path) -> dict[str, Any] | None:
    """The state of a live sandbox in ``state_dir``, or None."""
    state = read_state(state_dir)
    if state and alive(state["pid"], state.get("started")):
        return state
    return None


def up(state_dir: Path, settings: SandboxSettings, timeout: float = 60) -> tuple[bool, dict]:
    """Start the sandbox unless one runs; returns (started, state)."""
    state_dir = state_dir.resolve()
    current = running(state_dir)
    if current:
        return False, current
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / STATE_FILE).unlink(missing_ok=True)  # stale, from a process that died
    (state_dir / SETTINGS_FILE).write_text(yaml.safe_dump(settings.to_dict(), sort_keys=False))
    log = (state_dir / LOG_FILE).open("ab")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--state-dir", str(state_dir)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,  # its own process group: down stops all of it
        env=env,
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(state_dir)
        if state and state.get("pid") == process.pid:
            return True, state
        if process.poll() is not None:
            raise SandboxError(
                f"sandbox exited with {process.returncode}; see {state_dir / LOG_FILE}:\n"
                + _tail(state_dir / LOG_FILE)
            )
        time.sleep(0.05)
    stop_group(process.pid, None, 5)
    raise SandboxError(f"sandbox not ready after {timeout:.0f}s; see {state_dir / LOG_FILE}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def down(state_dir: Path, timeout: float = 15) -> dict[str, Any] | None:
    """Stop the sandbox; returns the state it had, or None when none ran."""
    state_dir = state_dir.resolve()
    state = read_state(state_dir)
    if not state:
        return None
    stop_group(state["pid"], state.get("started"), timeout)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    still = [state[k] for k in URL_KEYS if state.get(k) and _listening(state[k])]
    if still:
        raise SandboxError(f"sandbox stopped but these still listen: {', '.join(still)}")
    return state


def status(state_dir: Path) -> dict[str, Any] | None:
    """The running sandbox's endpoints with a health check of each, and its settings."""
    state = running(state_dir.resolve())
    if not state:
        return None
    health = {k: _listening(state[k]) for k in URL_KEYS if state.get(k)}
    control = control_call(state, "GET", "/status")
    return {**state, "health": health, "settings": control}


def control_call(state: dict[str, Any], method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        state["control_url"] + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise SandboxError(json.loads(exc.read() or b"{}").get("error", str(exc))) from None
