"""The kubelet's part for pods whose containers run as processes (pod_commands.py).

Once such a pod would be Running, each of its process containers is started
(runtime.py); its other containers stay simulated. The pod is Ready while its processes
run. A run-to-completion pod (restartPolicy Never or OnFailure, as Job pods) ends when they
have all exited: Succeeded when every one exited 0, Failed otherwise. Under restartPolicy
Always an exited process is in CrashLoopBackOff for a short back-off, then runs again with
its restartCount one higher and its last run as lastState.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sandbox.kube.pod_commands import process_command
from sandbox.kube.runtime import Cluster, ProcessRuntime, Run

RESTART_BACKOFF = 1.0  # seconds; the kubelet's starts at 10 s, too slow for a test double
POLL_SECONDS = 0.2  # how often a running process is looked at: its exit is noticed by then

EnvFor = Callable[[dict[str, Any]], dict[str, str]]  # container -> its environment


def run_containers(
    runtime: ProcessRuntime,
    pod: dict[str, Any],
    cluster: Cluster | None,
    env_for: EnvFor,
) -> dict[str, Run]:
    """Start the pod's process containers not yet started, restart those due; by name.
    ``env_for`` may raise pod_env.EnvError, leaving that container unstarted."""
    pod_uid = pod["metadata"]["uid"]
    always = restarts_always(pod)
    runs = {}
    for container in pod["spec"].get("containers") or []:
        argv = process_command(container)
        if argv is None:
            continue
        name = container.get("name", "")
        run = runtime.get(pod_uid, name)
        if run is None:
            run = runtime.start(pod_uid, name, argv, env_for(container), cluster)
        elif (
            always
            and run.exit_code is not None
            and time.monotonic() - run.finished_monotonic >= RESTART_BACKOFF
        ):
            runtime.restart(run)
        runs[name] = run
    return runs


def restarts_always(pod: dict[str, Any]) -> bool:
    return pod["spec"].get("restartPolicy", "Always") == "Always"


def outcome(pod: dict[str, Any], runs: dict[str, Run]) -> str | None:
    """The phase a run-to-completion pod ends in once its processes have exited."""
    if restarts_always(pod) or any(run.exit_code is None for run in runs.values()):
        return None
    return "Succeeded" if all(run.exit_code == 0 for run in runs.values()) else "Failed"


def all_running(runs: dict[str, Run]) -> bool:
    return all(run.exit_code is None for run in runs.values())


def apply_runs(statuses: list[dict[str, Any]], runs: dict[str, Run], always: bool) -> None:
    """Turn the simulated statuses of process containers into their processes' own."""
    for item in statuses:
        run = runs.get(item["name"])
        if run is None:
            continue
        item["restartCount"] = run.restarts
        if run.last:
            item["lastState"] = {"terminated": dict(run.last)}
        if run.exit_code is None:
            item.update(ready=True, started=True, state={"running": {"startedAt": run.started_at}})
        elif always:
            item.update(ready=False, started=False, lastState={"terminated": run.terminated()})
            item["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {RESTART_BACKOFF:g}s restarting failed container="
                    f"{item['name']}",
                }
            }
        else:
            item.update(ready=False, started=False, state={"terminated": run.terminated()})
