"""The container runtime of pods that run as local processes (see pod_commands.py).

Each container is a process in a session (and process group) of its own, in its pod's
scratch folder, writing stdout and stderr to a log file there. When a container's main
process exits, what it left behind in its group is killed, as the kernel kills a container's
other processes when its first one ends. A pod's processes get SIGTERM and, a few seconds
later, SIGKILL when the pod goes, and all of them when the simulator stops.

The Kubernetes API server asks which pod processes run (``roots``) to tell a connection
from inside a cluster's VPC (peers.py); it runs on other threads, hence the lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.kube.objects import now
from sandbox.processes import ProcessError, start_ticks, stop_group

log = logging.getLogger(__name__)

STOP_SECONDS = 3.0  # from SIGTERM to SIGKILL, as a short terminationGracePeriodSeconds
Cluster = tuple[str, str]  # (region, name) of the cluster whose node runs the pod


@dataclass
class Run:
    """One container's process, and what its earlier runs ended with."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    cluster: Cluster | None
    process: subprocess.Popen | None = None
    started: int | None = None  # start ticks, so a pid is never mistaken for a later one
    started_at: str = ""
    exit_code: int | None = None
    finished_at: str = ""
    finished_monotonic: float = 0.0
    restarts: int = 0
    last: dict[str, object] | None = None  # the previous run's terminated state

    def terminated(self) -> dict[str, object]:
        return {
            "exitCode": self.exit_code,
            "reason": "Completed" if self.exit_code == 0 else "Error",
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }


class ProcessRuntime:
    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self._runs: dict[tuple[str, str], Run] = {}  # (pod uid, container) -> its run
        self._stopping: list[threading.Thread] = []
        self._lock = threading.Lock()

    def pod_dir(self, pod_uid: str) -> Path:
        path = self.work_dir / pod_uid
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- the kubelet's side ---------------------------------------------------------------

    def start(
        self,
        pod_uid: str,
        container: str,
        argv: list[str],
        env: dict[str, str],
        cluster: Cluster | None,
    ) -> Run:
        cwd = self.pod_dir(pod_uid)
        run = Run(argv, env, cwd, cwd / f"{container}.log", cluster)
        self._spawn(run)
        with self._lock:
            self._runs[(pod_uid, container)] = run
        return run

    def _spawn(self, run: Run) -> None:
        with open(run.log_path, "ab") as output:
            run.process = subprocess.Popen(
                run.argv,
                cwd=run.cwd,
                env=run.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, signalled as one
            )
        run.started = start_ticks(run.process.pid)
        run.started_at = now()
        run.exit_code, run.finished_at = None, ""
        log.info("started %s (pid %d)", " ".join(run.argv[:6]), run.process.pid)

    def get(self, pod_uid: str, container: str) -> Run | None:
        """The container's run, its exit code noted once its process has exited."""
        with self._lock:
            run = self._runs.get((pod_uid, container))
        if run is None or run.process is None or run.exit_code is not None:
            return run
        code = run.process.poll()
        if code is not None:
            with contextlib.suppress(OSError):  # the rest of the container goes with it
                os.killpg(run.process.pid, signal.SIGKILL)
            run.exit_code = code if code >= 0 else 128 - code  # a signal, as a shell says
            run.finished_at = now()
            run.finished_monotonic = time.monotonic()
        return run

    def restart(self, run: Run) -> None:
        """Run an exited container again (restartPolicy Always)."""
        run.last = run.terminated()
        run.restarts += 1
        self._spawn(run)

    def remove_pod(self, pod_uid: str) -> None:
        """Stop the pod's processes (in the background) and then remove its folder."""
        with self._lock:
            runs = [self._runs.pop(k) for k in list(self._runs) if k[0] == pod_uid]
            stopper = threading.Thread(
                target=self._stop_runs, args=(runs, self.work_dir / pod_uid), daemon=True
            )
            self._stopping = [t for t in self._stopping if t.is_alive()] + [stopper]
        stopper.start()

    def stop_all(self) -> None:
        """Stop every process and wait for them all: none outlives the simulator."""
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
            stopping = list(self._stopping)
        self._stop_runs(runs, None)
        for thread in stopping:
            thread.join()

    @staticmethod
    def _stop_runs(runs: list[Run], folder: Path | None) -> None:
        for run in runs:
            if run.process is None:
                continue
            try:
                stop_group(run.process.pid, run.started, timeout=STOP_SECONDS)
            except ProcessError:
                log.exception("could not stop %s", run.argv[:4])
            run.process.poll()  # reaps it when stop_group did not
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    # -- the API server's side -------------------------------------------------------------

    def log(self, pod_uid: str, container: str) -> str | None:
        """What the container printed; None for a container that is not a process."""
        with self._lock:
            run = self._runs.get((pod_uid, container))
        if run is None:
            return None
        try:
            return run.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def roots(self) -> dict[int, Cluster]:
        """The pids of running pod processes, with the cluster each one's node is in."""
        with self._lock:
            return {
                run.process.pid: run.cluster
                for run in self._runs.values()
                if run.process is not None and run.exit_code is None and run.cluster
            }
