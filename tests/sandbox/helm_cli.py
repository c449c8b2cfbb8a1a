"""The helm CLI against a simulator, with folders of its own (the user's stay untouched)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sandbox.tools import ensure_tools


def helm(kubeconfig: Path, home: Path, *args: str) -> None:
    """Run one helm command; fails the test with helm's stderr when helm fails."""
    done = subprocess.run(
        [str(ensure_tools()["helm"]), *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        },
    )
    assert done.returncode == 0, done.stderr
