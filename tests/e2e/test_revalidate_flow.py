"""``revalidate_platform`` on a sandbox platform that ``bootstrap_platform`` brought up: a
fresh platform revalidates clean without changing anything; a release uninstalled with
helm and a node group rescaled through the EKS API fail the run, named in its table
artifact; ``remediate=True`` converges exactly those two, and the next check is clean.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import TaskRun
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.states import State

from blocks.target import PlatformTarget
from blueprint.catalogue import load_catalogue
from blueprint.loader import load_spec
from flows.platform import bootstrap_platform
from flows.revalidate import revalidate_platform
from sandbox.stack import SandboxStack
from tasks.aws.clients import aws_clients
from tasks.drift import VALIDATION
from tasks.progress import board

pytestmark = pytest.mark.e2e

SPEC = load_spec("sandbox")
CATALOGUE = load_catalogue()
COMPONENTS = [c.name for c in CATALOGUE.components]
ROWS = [*COMPONENTS, VALIDATION]
FLOW_TIME_SCALE = 0.2
READ_ONLY = ("Describe", "List", "Get", "Head")
# What the test changes behind the platform's back.
UNINSTALLED = CATALOGUE.component("argocd")
RESCALED_GROUP = "workload"
RESCALED = {"minSize": 1, "maxSize": 5, "desiredSize": 3}  # the spec says max 8


@dataclass
class Revalidation:
    state: State
    rows: dict[str, dict[str, str]]  # the table artifact, by component
    summary: str  # the markdown artifact
    releases: dict[str, dict[str, Any]]  # helm list -A afterwards, by release
    aws_calls: Counter[str]  # operations the flow's AWS clients called


class AwsOperations:
    """A ``before-call`` hook counting operations while switched on."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.on = False

    def __call__(self, model: Any, **_: Any) -> None:
        if self.on:
            self.seen[model.name] += 1


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxStack]:
    with SandboxStack(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture(scope="module")
def aws_operations(target: PlatformTarget) -> AwsOperations:
    hook = AwsOperations()
    aws_clients(target.aws_credentials, target.region).register("before-call", hook)
    return hook


def helm(helm_binary: str, stack: SandboxStack, *args: str) -> str:
    assert stack.target is not None
    out = subprocess.run(
        [helm_binary, *args, "--kubeconfig", stack.target.kubeconfig],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def helm_list(helm_binary: str, stack: SandboxStack) -> dict[str, dict[str, Any]]:
    listed = helm(helm_binary, stack, "list", "--all-namespaces", "--all", "--output", "json")
    return {row["name"]: row for row in json.loads(listed)}


def artifact(flow_run_id: Any, key: str) -> Any:
    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[key]),
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                )
            )

    found = asyncio.run(read())
    assert len(found) == 1, (key, found)
    return found[0]


def revalidate(
    helm_binary: str, stack: SandboxStack, aws: AwsOperations, **parameters: Any
) -> Revalidation:
    board.reset()
    aws.seen.clear()
    aws.on = True
    try:
        state = asyncio.run(
            revalidate_platform(environment="sandbox", return_state=True, **parameters)
        )
    finally:
        aws.on = False
    run_id = state.state_details.flow_run_id
    table = artifact(run_id, "drift-sandbox")
    assert table.type == "table"
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    summary = artifact(run_id, "drift-summary-sandbox")
    assert summary.type == "markdown"
    return Revalidation(
        state,
        {row["component"]: row for row in rows},
        summary.data,
        helm_list(helm_binary, stack),
        Counter(aws.seen),
    )


@pytest.fixture(scope="module")
def platform(dns_token_block: str, helm_binary: str, stack: SandboxStack, target: PlatformTarget):
    board.reset()
    state = asyncio.run(bootstrap_platform(environment="sandbox", return_state=True))
    assert state.is_completed(), state.message
    return helm_list(helm_binary, stack)


@pytest.fixture(scope="module")
def fresh(platform: dict, helm_binary: str, stack: SandboxStack, aws_operations: AwsOperations):
    return revalidate(helm_binary, stack, aws_operations)


@pytest.fixture(scope="module")
def drifted(
    fresh: Revalidation,
    helm_binary: str,
    stack: SandboxStack,
    target: PlatformTarget,
    aws_operations: AwsOperations,
) -> Revalidation:
    """argocd uninstalled with helm, the workload group's maximum lowered through EKS."""
    assert UNINSTALLED.chart is not None
    namespace = UNINSTALLED.namespace_in(SPEC)
    assert namespace is not None
    helm(helm_binary, stack, "uninstall", UNINSTALLED.chart.release, "--namespace", namespace)
    eks = aws_clients(target.aws_credentials, target.region)("eks")
    eks.update_nodegroup_config(
        clusterName=SPEC.eks.cluster_name, nodegroupName=RESCALED_GROUP, scalingConfig=RESCALED
    )
    return revalidate(helm_binary, stack, aws_operations)


@pytest.fixture(scope="module")
def remediated(
    drifted: Revalidation, helm_binary: str, stack: SandboxStack, aws_operations: AwsOperations
) -> Revalidation:
    return revalidate(helm_binary, stack, aws_operations, remediate=True)


@pytest.fixture(scope="module")
def settled(
    remediated: Revalidation, helm_binary: str, stack: SandboxStack, aws_operations: AwsOperations
) -> Revalidation:
    return revalidate(helm_binary, stack, aws_operations)


def task_runs(run: Revalidation, count: int) -> list[TaskRun]:
    """The run's task runs once ``count`` are recorded final (Prefect records them
    asynchronously)."""
    flow_run = FlowRunFilter(id=FlowRunFilterId(any_=[run.state.state_details.flow_run_id]))

    async def read() -> list[TaskRun]:
        async with get_client() as client:
            return await client.read_task_runs(flow_run_filter=flow_run)

    deadline = time.monotonic() + 15
    while True:
        runs = asyncio.run(read())
        final = [r for r in runs if r.state is not None and r.state.is_final()]
        if len(final) >= count or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


# --------------------------------------------------------------------- a fresh platform


def test_a_fresh_platform_revalidates_clean(fresh: Revalidation):
    assert fresh.state.is_completed(), fresh.state.message
    assert list(fresh.rows) == ROWS
    assert {n: r["status"] for n, r in fresh.rows.items() if r["status"] != "ok"} == {}
    for component in CATALOGUE.components:
        row = fresh.rows[component.name]
        assert (row["workflow"], row["kind"]) == (component.workflow, component.kind)
    assert fresh.rows["argocd"]["detail"] == "revision 1 deployed"
    assert fresh.rows[VALIDATION]["detail"] == "4 checks passed"
    assert "The platform matches its spec." in fresh.summary
    assert fresh.state.result()["drifted"] == []


def test_revalidation_changes_nothing(platform: dict, fresh: Revalidation):
    assert fresh.releases == platform  # same revisions, same update times
    mutating = {op: n for op, n in fresh.aws_calls.items() if not op.startswith(READ_ONLY)}
    assert mutating == {}
    assert {"DescribeVpcs", "DescribeCluster", "DescribeNodegroup", "HeadBucket"} <= set(
        fresh.aws_calls
    )


def test_one_readable_check_per_component(fresh: Revalidation):
    runs = task_runs(fresh, len(COMPONENTS) + 1)
    assert Counter(r.name for r in runs) == Counter([*COMPONENTS, "validate-foundation"])
    assert all(r.state is not None and r.state.is_completed() for r in runs)


# -------------------------------------------------------------------------------- drift


def test_drift_fails_the_run_naming_what_drifted(drifted: Revalidation):
    assert drifted.state.is_failed()
    message = drifted.state.message or ""
    assert "argocd" in message and "node-groups" in message, message
    with pytest.raises(Exception, match="drifted: node-groups, argocd"):
        drifted.state.result()


def test_the_table_shows_the_two_drifted_components_and_the_rest_ok(drifted: Revalidation):
    statuses = {n: r["status"] for n, r in drifted.rows.items()}
    assert {n: s for n, s in statuses.items() if s != "ok"} == {
        "argocd": "missing",
        "node-groups": "drifted",
    }
    assert list(drifted.rows) == ROWS
    assert drifted.rows["argocd"]["detail"] == (
        f"release argocd is not installed in {UNINSTALLED.namespace_in(SPEC)}"
    )
    assert drifted.rows["node-groups"]["detail"] == "workload maxSize 5 (spec 8)"
    assert "| argocd | gitops | missing |" in drifted.summary


def events_of(run: Revalidation, name: str) -> list[Any]:
    """Events ``name`` about platform.sandbox that ``run`` emitted (read once recorded)."""
    flow_run = f"prefect.flow-run.{run.state.state_details.flow_run_id}"

    async def read() -> list[Any]:
        async with get_client() as client:
            page = await client.read_events(
                filter=EventFilter(
                    event=EventNameFilter(name=[name]),
                    resource=EventResourceFilter(id=["platform.sandbox"]),
                ),
                limit=50,  # the client's default (100) is above what the server accepts
            )
        return [e for e in page.events if flow_run in {r.id for r in e.related}]

    deadline = time.monotonic() + 15
    while not (events := asyncio.run(read())) and time.monotonic() < deadline:
        time.sleep(0.3)
    return events


def test_drift_is_emitted_as_an_event(drifted: Revalidation):
    events = events_of(drifted, "platform.drift.detected")
    assert len(events) == 1
    assert events[0].payload == {
        "counts": {"ok": len(ROWS) - 2, "missing": 1, "drifted": 1},
        "components": ["node-groups", "argocd"],
        "remediate": False,
    }


# -------------------------------------------------------------------------- remediation


def test_remediation_converges_exactly_the_drifted_components(
    drifted: Revalidation, remediated: Revalidation, target: PlatformTarget
):
    assert remediated.state.is_completed(), remediated.state.message
    changed = {
        name for name, row in remediated.releases.items() if drifted.releases.get(name) != row
    }
    assert changed == {"argocd"}  # every other release kept its revision and update time
    assert remediated.releases["argocd"]["status"] == "deployed"
    group = aws_clients(target.aws_credentials, target.region)("eks").describe_nodegroup(
        clusterName=SPEC.eks.cluster_name, nodegroupName=RESCALED_GROUP
    )["nodegroup"]
    wanted = SPEC.node_groups[RESCALED_GROUP]
    assert group["scalingConfig"] == {
        "minSize": wanted.min_size,
        "maxSize": wanted.max_size,
        "desiredSize": wanted.desired_size,
    }
    # the checks, once for all and again for the two, and the two convergence tasks only
    expected = Counter(
        [*COMPONENTS, "validate-foundation", "argocd", "node-groups", "validate-foundation"]
    )
    expected.update(["argocd", "node-groups"])
    runs = task_runs(remediated, sum(expected.values()))
    assert Counter(r.name for r in runs) == expected
    converged = {r.name for r in runs if not r.task_key.startswith(("detect_drift", "validate"))}
    assert converged == {"argocd", "node-groups"}


def test_the_table_shows_before_and_after(remediated: Revalidation):
    rows = remediated.rows
    assert list(rows) == ROWS
    changed = {n: (r["before"], r["after"]) for n, r in rows.items() if r["before"] != "ok"}
    assert changed == {"argocd": ("missing", "ok"), "node-groups": ("drifted", "ok")}
    assert {rows[n]["after"] for n in ROWS} == {"ok"}
    assert rows["node-groups"]["detail"].startswith("workload maxSize 5 (spec 8) -> ")
    assert "converged and healthy: node-groups, argocd" in remediated.summary
    assert [e.payload["counts"] for e in events_of(remediated, "platform.drift.remediated")] == [
        {"ok": len(ROWS)}
    ]


def test_the_next_revalidation_is_clean(remediated: Revalidation, settled: Revalidation):
    assert settled.state.is_completed(), settled.state.message
    assert {r["status"] for r in settled.rows.values()} == {"ok"}
    assert settled.releases == remediated.releases
    mutating = {op: n for op, n in settled.aws_calls.items() if not op.startswith(READ_ONLY)}
    assert mutating == {}
