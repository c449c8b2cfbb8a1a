"""``platformctl up`` as people run it, against one sandbox and one Prefect server:

- a missing input stops the run before anything exists;
- a run killed at five points of the platform (after the VPC, during the cluster, during
  the node groups, during the helm releases, during the gates) and run again converges:
  one VPC, one cluster, each release deployed once;
- two runs started at once on one environment take turns, and both complete.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from blueprint.catalogue import load_catalogue
from blueprint.loader import load_spec
from tests.e2e import prefect_server as servers

pytestmark = pytest.mark.e2e

PLATFORMCTL = Path(sys.executable).with_name("platformctl")
SPEC = load_spec("sandbox")
RELEASES = {
    c.chart.release: c for c in load_catalogue().components if c.chart and c.kind == "helm-release"
}
# Slow enough that a run can be caught in the middle of the cluster and the node groups.
SANDBOX_SETTINGS = {
    "time_scale": 0.05,
    "latency_minutes": {"eks_cluster": 60, "nodegroup": 40},  # 3 s and 2 s
}
RUN_SECONDS = 300


@dataclass
class Run:
    returncode: int
    output: list[str]


class Platform:
    """One sandbox and one Prefect server that every command of the module shares."""

    def __init__(self, folder: Path, api_url: str):
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.env.update(
            PREFECT_API_URL=api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PLATFORM_SANDBOX_DIR=str(folder / "sandbox"),
            COLUMNS="200",
        )

    def platformctl(
        self, *args: str, timeout: float = RUN_SECONDS
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PLATFORMCTL), *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_up(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(PLATFORMCTL), "up", "--env", "sandbox", *args],
            cwd=self.folder,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # killed with everything it started (helm)
        )

    def up(self, *args: str, kill_at: str | None = None, delay: float = 0.0) -> Run:
        """Run ``platformctl up``; with ``kill_at``, SIGKILL it (and helm) ``delay`` seconds
        after a progress line matches, as a crash or an OOM kill would."""
        process = self.start_up(*args)
        lines: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        reader = threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True)
        reader.start()
        output: list[str] = []
        deadline = time.monotonic() + RUN_SECONDS
        killed = False
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                os.killpg(process.pid, signal.SIGKILL)
                pytest.fail("platformctl up did not end: " + "\n".join(output[-20:]))
            if line is None:
                break
            output.append(line)
            if kill_at and not killed and re.search(kill_at, line):
                time.sleep(delay)
                os.killpg(process.pid, signal.SIGKILL)
                killed = True
        process.wait(timeout=30)
        if kill_at:
            assert killed, f"never reached {kill_at!r}:\n" + "\n".join(output)
        return Run(process.returncode, output)

    def inventory(self) -> dict[str, Any]:
        listed = self.platformctl("inventory", "--env", "sandbox", "--json", timeout=120)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        return json.loads(listed.stdout)

    def reports(self) -> list[dict[str, Any]]:
        found = sorted(
            (self.folder / ".runs").glob("*/report.json"), key=lambda p: p.stat().st_mtime
        )
        return [json.loads(p.read_text()) for p in found]


def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


@pytest.fixture(scope="module")
def temporary_prefect(
    postgres: servers.Postgres | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A Prefect that, like the temporary server ``platformctl up`` gets without
    PREFECT_API_URL, does not reclaim the leases of a run that was killed (``unlock`` is
    how the next run gets the environment): on PostgreSQL with its repossessor off where
    the machine has PostgreSQL, else Prefect's SQLite test server itself."""
    if postgres is None:
        with prefect_test_harness():
            yield str(PREFECT_API_URL.value())
        return
    folder = tmp_path_factory.mktemp("temporary-prefect")
    with servers.prefect_server(
        folder,
        postgres.database("cli_runs"),
        PREFECT_SERVER_SERVICES_REPOSSESSOR_ENABLED="false",
    ) as url:
        yield url


@pytest.fixture(scope="module")
def platform(
    temporary_prefect: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    folder = tmp_path_factory.mktemp("cli-runs")
    settings = folder / "sandbox.yaml"
    settings.write_text(yaml.safe_dump(SANDBOX_SETTINGS))
    running = Platform(folder, temporary_prefect)
    started = running.platformctl("sandbox", "up", "--settings", str(settings), "--no-blocks")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield running
    finally:
        running.platformctl("sandbox", "down", timeout=60)


def test_a_missing_secret_block_stops_up_at_once_and_nothing_is_created(platform: Platform):
    site = platform.folder / "site.yaml"
    site.write_text(yaml.safe_dump({"ingress": {"external_dns": {"token_secret_block": "gone"}}}))
    began = time.monotonic()
    refused = platform.platformctl("up", "--env", "sandbox", "--spec", str(site), timeout=120)
    took = time.monotonic() - began
    assert refused.returncode != 0
    errors = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "'gone'" in errors[0] and errors[0].startswith("error: "), errors
    assert took < 30, f"took {took:.0f}s to refuse"
    assert platform.inventory()["aws"] == []


KILL_POINTS = [
    ("after the VPC", r"^\s*foundation vpc\s+completed", 0.0),
    ("during the cluster", r"^\s*foundation eks\s+running", 1.0),
    ("during the node groups", r"^\s*foundation node-groups\s+running", 0.5),
    ("during the helm releases", r"^\s*ingress cert-manager\s+running", 0.3),
    ("during the gates", r"^\s*\w+ (ingress|observability)-gate\s+running", 0.0),
]


@dataclass
class Again:
    """Two runs started at once after the kills: the runs that converge."""

    runs: list[subprocess.Popen[str]]
    outputs: list[str]
    reports: list[dict[str, Any]]


@pytest.fixture(scope="module")
def killed_then_run_twice(platform: Platform) -> Again:
    """The run killed at each point in turn, then two runs started at once."""
    for point, pattern, delay in KILL_POINTS:
        run = platform.up(kill_at=pattern, delay=delay)
        failed = [line for line in run.output if re.search(r"\s(failed|skipped)\b", line)]
        assert failed == [], f"killed {point}, the run had failed already: {failed}"
        # A run that is killed keeps its lock until its lease expires on a served Prefect;
        # on a temporary one this is how the next run gets it.
        unlocked = platform.platformctl("unlock", "--env", "sandbox", "--force", timeout=60)
        assert unlocked.returncode == 0, unlocked.stderr
        assert "platform-sandbox: released 1 slot" in unlocked.stdout, (point, unlocked.stdout)
    before = len(platform.reports())
    runs = [platform.start_up(), platform.start_up()]
    outputs = [p.communicate(timeout=RUN_SECONDS)[0] for p in runs]
    return Again(runs, outputs, platform.reports()[before:])


def test_a_run_killed_at_any_point_converges_when_run_again(
    platform: Platform, killed_then_run_twice: Again
):
    again = killed_then_run_twice
    assert [p.returncode for p in again.runs] == [0, 0], again.outputs
    assert [r["status"] for r in again.reports] == ["completed", "completed"]
    kinds = Counter(row["type"] for row in platform.inventory()["aws"])
    assert (kinds["vpc"], kinds["eks-cluster"]) == (1, 1)
    for release, component in RELEASES.items():
        namespace = component.namespace_in(SPEC)
        history = helm(platform, "history", release, "--namespace", str(namespace))
        deployed = [r for r in history if r["status"] == "deployed"]
        assert len(deployed) == 1, (release, history)


def test_two_runs_at_once_take_turns_and_both_complete(killed_then_run_twice: Again):
    again = killed_then_run_twice
    assert [p.returncode for p in again.runs] == [0, 0], again.outputs
    assert any("waiting for environment sandbox" in out for out in again.outputs)
    spans = sorted(span(r) for r in again.reports)
    assert spans[0][1] <= spans[1][0], f"their components overlapped: {spans}"


def span(report: dict[str, Any]) -> tuple[float, float]:
    times = [
        datetime.fromisoformat(c[key]).timestamp()
        for c in report["components"]
        for key in ("started_at", "finished_at")
        if c.get(key)
    ]
    return min(times), max(times)


def helm(platform: Platform, *args: str) -> list[dict[str, Any]]:
    state = json.loads((platform.folder / "sandbox" / "state.json").read_text())
    binary = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "helm"
    done = subprocess.run(
        [str(binary), *args, "--output", "json", "--kubeconfig", state["kubeconfig"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
