"""``python -m sandbox --state-dir DIR``: run the sandbox until SIGTERM or SIGINT.

``platformctl sandbox up`` starts this in the background; ``down`` sends SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from sandbox.control import SETTINGS_FILE, STATE_FILE
from sandbox.processes import start_ticks
from sandbox.settings import SandboxSettings
from sandbox.stack import SandboxStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox")
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("sandbox")
    state_dir: Path = args.state_dir.resolve()
    settings_file = state_dir / SETTINGS_FILE
    settings = (
        SandboxSettings.from_file(settings_file) if settings_file.exists() else SandboxSettings()
    )

    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())

    began = time.monotonic()
    stack = SandboxStack(state_dir, settings)
    target = stack.start()
    state = {
        "pid": os.getpid(),
        "started": start_ticks(os.getpid()),
        "started_at": time.time(),
        "startup_seconds": {**stack.startup_seconds, "total": round(time.monotonic() - began, 3)},
        **target.to_dict(),
        "kube_url": stack.kube.url if stack.kube else None,
    }
    state_file = state_dir / STATE_FILE
    partial = state_file.with_suffix(".partial")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    partial.replace(state_file)  # readers never see a half-written file
    log.info("sandbox ready in %.2fs: %s", state["startup_seconds"]["total"], target)
    try:
        stopping.wait()
    finally:
        log.info("stopping")
        state_file.unlink(missing_ok=True)
        stack.stop()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
