"""The foundation flow run for real with Prefect on an in-process sandbox, a foundation task's
retry behaviour inside a small flow, and ``platformctl up`` / ``inventory`` /
``sandbox down`` run the way a user runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.retries.bucket import TokenBucket
from botocore.retries.standard import ExponentialBackoff
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.states import State

from blocks.target import PlatformTarget
from blueprint.catalogue import load_catalogue
from blueprint.loader import load_spec, load_spec_data, validate_spec
from blueprint.pace import Pace
from blueprint.spec import PlatformSpec
from flows.foundation import foundation
from sandbox.settings import Fault, SandboxSettings
from sandbox.stack import SandboxStack
from tasks.aws.clients import aws_clients
from tasks.aws.errors import AwsError
from tasks.aws.inventory import aws_inventory
from tasks.context import RunContext
from tasks.foundation import converge_iam
from tasks.progress import ComponentRun, board
from tests.call_log import READS, CallLog

pytestmark = pytest.mark.e2e

SPEC = load_spec("sandbox")
FLOW_TIME_SCALE = 0.2
# The sandbox's control planes take a moment (cluster 0.6 s, node group 0.25 s, add-on 0.1 s),
# so that the flow really waits on CREATING states and starts components as needs complete.
SANDBOX_TIME_SCALE = 0.05
FOUNDATION = [c.name for c in load_catalogue().components if c.workflow == "foundation"]
CHECKS = ["nodes_ready", "kube_system_running_pods", "cluster_info", "eks_status"]


@dataclass
class FlowRun:
    state: State
    components: dict[str, ComponentRun]
    inventory: list[dict[str, str]]


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxStack]:
    settings = SandboxSettings()
    settings.latency.time_scale = SANDBOX_TIME_SCALE
    # EKS tokens live 15 guide minutes at the flows' pace, which sets their renewal.
    settings.latency.minutes["eks_token"] = 15 * FLOW_TIME_SCALE / SANDBOX_TIME_SCALE
    with SandboxStack(tmp_path_factory.mktemp("sandbox"), settings) as running:
        yield running


@pytest.fixture(autouse=True)
def no_fault_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").settings.faults.clear()


@pytest.fixture(scope="module")
def first_run(prefect_api: None, target: PlatformTarget, helm_binary: str) -> FlowRun:
    """The foundation flow on a sandbox where nothing exists yet (its one chart, the
    in-cluster worker, included)."""
    board.reset()
    state = asyncio.run(foundation(environment="sandbox", return_state=True))
    components = {name: copy.copy(run) for name, run in board.runs.items()}
    inventory = aws_inventory(SPEC, aws_clients(target.aws_credentials, target.region))
    return FlowRun(state, components, inventory)


@pytest.fixture
def instant_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore still makes every attempt, but its backoff and adaptive rate-limit sleeps
    take no time (9 attempts against a 503 would otherwise wait up to a minute)."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    monkeypatch.setattr(TokenBucket, "_sleep_amount", lambda self, amount: 0.0)


# --------------------------------------------------------------------------- the flow


def test_flow_completes_and_every_check_passes_with_its_value(first_run: FlowRun):
    assert first_run.state.is_completed(), first_run.state.message
    result = first_run.state.result()
    assert result["components"] == sorted(FOUNDATION)
    checks = {c["name"]: c for c in result["checks"]}
    assert list(checks) == CHECKS
    assert all(c["passed"] for c in checks.values()), result["checks"]
    assert checks["nodes_ready"]["value"] >= SPEC.validation.min_nodes
    assert (
        checks["kube_system_running_pods"]["value"] >= SPEC.validation.min_kube_system_running_pods
    )
    assert str(checks["cluster_info"]["value"]).startswith("v1.")
    assert checks["eks_status"]["value"] == "ACTIVE"
    assert all(c["expected"] for c in checks.values())


def test_validation_table_artifact_holds_the_checks(first_run: FlowRun):
    flow_run_id = first_run.state.state_details.flow_run_id

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=["foundation-validation"]),
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                )
            )

    artifacts = asyncio.run(read())
    assert len(artifacts) == 1
    artifact = artifacts[0]
    assert artifact.type == "table"
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert rows == first_run.state.result()["checks"]


def test_components_start_as_soon_as_their_needs_complete(first_run: FlowRun):
    runs = first_run.components
    assert set(runs) == set(FOUNDATION)
    assert {r.status for r in runs.values()} == {"completed"}

    def started(name: str) -> float:
        value = runs[name].started_at
        assert value is not None, name
        return value

    def finished(name: str) -> float:
        value = runs[name].finished_at
        assert value is not None, name
        return value

    assert started("eks") >= max(finished("vpc"), finished("iam"))
    # vpc-cni and kube-proxy: as soon as the cluster is ACTIVE, not after the node groups
    for early in ("addon-vpc-cni", "addon-kube-proxy"):
        assert finished("eks") <= started(early) < finished("node-groups"), early
    # coredns, EBS CSI and the snapshot controller: once nodes are Ready
    for late in ("addon-coredns", "addon-ebs-csi", "addon-snapshot-controller"):
        assert started(late) >= finished("node-groups"), late
    assert started("storage-class") >= max(
        finished("addon-ebs-csi"), finished("addon-snapshot-controller")
    )
    assert started("foundation-gate") >= max(
        finished(n) for n in ("node-groups", "addon-vpc-cni", "addon-kube-proxy", "addon-coredns")
    )
    assert started("runner") >= finished("foundation-gate")


def test_rerun_makes_no_mutating_aws_call_and_changes_nothing(
    first_run: FlowRun, target: PlatformTarget, stack: SandboxStack
):
    assert first_run.state.is_completed(), first_run.state.message
    assert stack.aws is not None
    aws = aws_clients(target.aws_credentials, target.region)  # what the flow's tasks use
    before = aws_inventory(SPEC, aws)
    assert before == first_run.inventory
    served_before = stack.aws.calls()
    log = CallLog()
    aws.register("before-call", log)

    state = asyncio.run(foundation(environment="sandbox", return_state=True))

    assert state.is_completed(), state.message
    assert all(c["passed"] for c in state.result()["checks"])
    assert log.mutating() == []
    assert {"DescribeVpcs", "GetRole", "DescribeCluster", "DescribeNodegroup", "DescribeAddon"} <= (
        set(log.operations)
    )
    served = {
        op: n - served_before.get(op, 0)
        for op, n in stack.aws.calls().items()
        if n != served_before.get(op, 0)
    }
    assert served, "the local AWS saw no call at all"
    assert {op: n for op, n in served.items() if not op.split(":")[1].startswith(READS)} == {}
    assert aws_inventory(SPEC, aws) == before


# ------------------------------------------------------- a foundation task run by Prefect


def spec_named(name: str) -> PlatformSpec:
    """The sandbox spec under another platform name: roles of its own, none exist yet."""
    data = load_spec_data("sandbox")
    data["platform"]["name"] = name
    data["eks"]["cluster_name"] = f"{name}-cluster"
    return validate_spec(data)


def run_task_in_flow(task: Any, ctx: RunContext) -> State:
    """Run one foundation task inside a small flow; returns the task's final state."""
    captured: dict[str, State] = {}

    @flow(name="foundation-task-under-test")
    def single_task() -> None:
        captured["state"] = task(ctx, return_state=True)

    single_task()
    return captured["state"]


def recorded_task_run(task_run_id: Any) -> tuple[Any, list[str]]:
    """The task run as the Prefect API recorded it (once final) and its state names."""
    deadline = time.monotonic() + 15
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_task_run(task_run_id)
            if (run.state is not None and run.state.is_final()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        names = [s.name for s in client.read_task_run_states(task_run_id)]
    return run, names


def served(stack: SandboxStack, operation: str) -> int:
    assert stack.aws is not None
    return stack.aws.calls().get(operation, 0)


def test_permanent_error_fails_the_task_at_once_with_its_code(
    prefect_api: None, stack: SandboxStack, target: PlatformTarget
):
    spec = spec_named("denied")
    stack.settings.faults.add(Fault("aws-denied", "iam:CreateRole"))
    before = served(stack, "iam:CreateRole")

    state = run_task_in_flow(converge_iam, RunContext(spec, target, Pace(FLOW_TIME_SCALE)))

    assert state.is_failed()
    assert "AccessDenied" in (state.message or "")
    with pytest.raises(AwsError, match="iam:CreateRole failed: AccessDenied"):
        state.result()
    run, states = recorded_task_run(state.state_details.task_run_id)
    assert run.run_count == 1
    assert not {"AwaitingRetry", "Retrying"} & set(states), states
    assert served(stack, "iam:CreateRole") - before == 1


def test_transient_error_is_retried_by_the_task(
    prefect_api: None, stack: SandboxStack, target: PlatformTarget, instant_retry_waits: None
):
    spec = spec_named("flaky")
    iam = aws_clients(target.aws_credentials, target.region)("iam")
    attempts = iam.meta.config.retries["total_max_attempts"]  # botocore's retries + 1
    # every attempt of the first task run's CreateRole fails; then the fault is used up
    stack.settings.faults.add(Fault("aws-error", "iam:CreateRole", count=attempts))
    before = served(stack, "iam:CreateRole")

    state = run_task_in_flow(converge_iam, RunContext(spec, target, Pace(FLOW_TIME_SCALE)))

    assert state.is_completed(), state.message
    assert state.result().cluster_role_arn.endswith("role/flaky-sandbox-eks-cluster")
    run, states = recorded_task_run(state.state_details.task_run_id)
    assert run.run_count == 2
    assert "AwaitingRetry" in states, states
    # the first run spent all of botocore's attempts; the second created both roles
    assert served(stack, "iam:CreateRole") - before == attempts + 2
    assert stack.settings.faults.list() == []


# --------------------------------------------------------------------------- the CLI


def processes_marked(marker: str) -> list[int]:
    """Processes (other than this one) whose environment holds ``marker``: the ones the
    commands below started, since only they were given it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in environ:
            found.append(int(entry.name))
    return found


def test_platformctl_up_inventory_and_sandbox_down(tmp_path: Path):
    cli = Path(sys.executable).with_name("platformctl")
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PLATFORM_SANDBOX_DIR=str(tmp_path / "sandbox"),
        PREFECT_HOME=str(home),  # and no PREFECT_API_URL: an ephemeral server
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    marker = f"PREFECT_HOME={home}"

    def platformctl(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(cli), *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    try:
        up = platformctl("up", "--env", "sandbox", "--workflows", "foundation", timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr

        reports = list((work / ".runs").glob("*/report.json"))
        assert len(reports) == 1
        report = json.loads(reports[0].read_text())
        assert report["run_id"] == reports[0].parent.name
        assert report["status"] == "completed"
        assert (report["environment"], report["workflows"]) == ("sandbox", ["foundation"])
        assert isinstance(report["wall_s"], float) and report["wall_s"] > 0
        components = {c["name"]: c for c in report["components"]}
        assert set(components) == set(FOUNDATION)
        for name, component in components.items():
            assert (component["workflow"], component["status"]) == ("foundation", "completed")
            began = datetime.fromisoformat(component["started_at"])
            ended = datetime.fromisoformat(component["finished_at"])
            took = (ended - began).total_seconds()
            assert component["duration_s"] == pytest.approx(took, abs=0.01), name
            assert 0 <= component["duration_s"] <= report["wall_s"], name
        assert [c["name"] for c in report["checks"]] == CHECKS
        assert all(c["passed"] for c in report["checks"])

        lines = up.stdout.splitlines()
        for check in report["checks"]:
            line = (
                f"check {check['name']}: passed "
                f"(value {check['value']}, expected {check['expected']})"
            )
            assert line in lines
        summary = rf"run succeeded in \d+\.\ds: {len(FOUNDATION)} completed"
        assert any(re.fullmatch(summary, line) for line in lines), up.stdout
        assert f"report: {reports[0]}" in up.stdout.replace("\n", "")

        listed = platformctl("inventory", "--env", "sandbox", "--json", timeout=120)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        inventory = json.loads(listed.stdout)
        assert inventory["environment"] == "sandbox"
        assert "cluster_error" not in inventory, inventory["cluster_error"]
        kinds = Counter(row["type"] for row in inventory["aws"])
        zones = len(SPEC.network.availability_zones)
        assert kinds == {
            "vpc": 1,
            "subnet": 2 * zones,
            "internet-gateway": 1,
            "elastic-ip": 1,
            "nat-gateway": 1,
            "network-interface": 1,  # the NAT gateway's
            "route-table": 2,
            "vpc-endpoint": 1,
            "security-group": 1,
            "launch-template": len(SPEC.node_groups),
            "iam-role": 6,  # cluster, node; IRSA: ebs-csi, mimir, loki, runner
            "oidc-provider": 1,
            "eks-cluster": 1,
            "eks-nodegroup": len(SPEC.node_groups),
            "eks-addon": len(SPEC.addons.items),
            "log-group": 1,
        }
        cluster = next(r for r in inventory["aws"] if r["type"] == "eks-cluster")
        assert cluster["name"] == f"{SPEC.eks.cluster_name} ACTIVE"
    finally:
        down = platformctl("sandbox", "down", timeout=60)
        deadline = time.monotonic() + 15
        while (leftovers := processes_marked(marker)) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in leftovers:  # ours (they carry this test's marker): do not leave them
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "sandbox stopped" in down.stdout
    assert leftovers == []
