"""Which containers the kubelet runs as local processes, and with what command.

The platform's own image holds Prefect and the platform's code; the sandbox's Python stands
for it. A container whose command and args, after an entrypoint wrapper (tini, the Prefect
image's entrypoint.sh), start with ``prefect`` (the Prefect worker, a flow run) runs as
``python -m prefect ...`` of that Python; one that starts with ``python`` or ``python3``
runs that Python, so a pod can run a small script; one that runs ``kubectl`` runs the
sandbox's kubectl, against the simulator (chart hooks label namespaces so). An image whose
entrypoint is the command (no ``command`` in the container) is known by its repository.
Every other container stays simulated.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from sandbox.tools import tools_dir

# What sits in front of the real command in the Prefect image and in its worker chart.
_WRAPPERS = {"tini", "entrypoint.sh"}
_WRAPPER_FLAGS = {"-g", "-s", "--"}
# Images whose entrypoint runs what their containers' args name, by repository.
IMAGE_ENTRYPOINTS = {"openpolicyagent/gatekeeper-crds": ["kubectl"]}


def _entrypoint(image: str) -> list[str]:
    repository = image.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    return IMAGE_ENTRYPOINTS.get(repository.removeprefix("docker.io/"), [])


def process_command(container: dict[str, Any]) -> list[str] | None:
    """The local command line for a container, None when it stays simulated."""
    command = container.get("command") or _entrypoint(str(container.get("image") or ""))
    words = [str(w) for w in command + (container.get("args") or [])]
    while words and (os.path.basename(words[0]) in _WRAPPERS or words[0] in _WRAPPER_FLAGS):
        words.pop(0)
    if not words:
        return None
    program = os.path.basename(words[0])
    if program == "prefect":
        return [sys.executable, "-m", "prefect", *words[1:]]
    if program in ("python", "python3"):
        return [sys.executable, *words[1:]]
    if program == "kubectl":
        return [str(tools_dir() / "bin" / "kubectl"), *words[1:]]
    return None


def runs_processes(pod: dict[str, Any]) -> bool:
    return any(process_command(c) for c in (pod.get("spec") or {}).get("containers") or [])
