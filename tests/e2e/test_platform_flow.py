"""``bootstrap_platform`` run for real with Prefect on an in-process sandbox: all seven
workflows at once, then again (nothing may change), then the gitops workflow alone, which
must check its prerequisites through the real gates of the workflows it needs.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.objects import FlowRun, TaskRun
from prefect.states import State

from blocks.target import PlatformTarget
from blueprint.catalogue import load_catalogue
from blueprint.loader import load_spec
from blueprint.plan import resolve_needs
from blueprint.spec import WORKFLOWS, bucket_name
from flows.platform import bootstrap_platform
from flows.workflows import gitops
from sandbox.aws.moto_app import ACCOUNT_ID
from sandbox.settings import SandboxSettings
from sandbox.stack import SandboxStack
from tasks.aws.clients import aws_clients
from tasks.platform import DNS_TOKEN_SECRET
from tasks.progress import ComponentRun, board
from tests.e2e.conftest import DNS_TOKEN
from tests.e2e.prefect_queries import unstamped

pytestmark = pytest.mark.e2e

SPEC = load_spec("sandbox")
CATALOGUE = load_catalogue()
COMPONENTS = [c.name for c in CATALOGUE.components]
RELEASES = [c for c in CATALOGUE.components if c.kind == "helm-release"]
# The releases whose results a workflow returns (the foundation returns its checks; its one
# release, the in-cluster worker, shows in helm's list).
WORKFLOW_RELEASES = [c for c in RELEASES if c.workflow != "foundation"]
NEEDS = resolve_needs(SPEC, CATALOGUE)
FLOW_TIME_SCALE = 0.2
# The sandbox's control planes take a moment (a node group 0.25 s, an add-on 0.1 s), so
# components that need them really wait and those that do not really go ahead.
SANDBOX_TIME_SCALE = 0.05
# The cluster takes 12 s: longer than Prefect takes to start the seven workflow subflows
# against the test server (its SQLite answers concurrent run creation with 503s, and the
# client backs off 2 s, then 4 s), so the buckets' head start over the cluster measures the
# scheduling rather than the API's backoff.
EKS_SECONDS = 12.0
READ_ONLY = ("Describe", "List", "Get", "Head")


class AwsOperations:
    """A ``before-call`` hook counting the operations the flow's AWS clients call."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.seen[model.name] += 1


@dataclass
class PlatformRun:
    state: State
    components: dict[str, ComponentRun]
    releases: dict[str, dict[str, Any]]  # helm list -A, by release name


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxStack]:
    settings = SandboxSettings()
    settings.latency.time_scale = SANDBOX_TIME_SCALE
    # EKS tokens live 15 guide minutes at the flows' pace, which sets their renewal.
    settings.latency.minutes["eks_token"] = 15 * FLOW_TIME_SCALE / SANDBOX_TIME_SCALE
    settings.latency.minutes["eks_cluster"] = EKS_SECONDS / SANDBOX_TIME_SCALE
    with SandboxStack(tmp_path_factory.mktemp("sandbox"), settings) as running:
        yield running


def helm_list(helm: str, stack: SandboxStack) -> dict[str, dict[str, Any]]:
    assert stack.target is not None
    command = ["list", "--all-namespaces", "--all", "--output", "json"]
    out = subprocess.run(
        [helm, *command, "--kubeconfig", stack.target.kubeconfig],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return {row["name"]: row for row in json.loads(out.stdout)}


def run_platform(target: PlatformTarget, helm: str, stack: SandboxStack) -> PlatformRun:
    board.reset()
    state = asyncio.run(bootstrap_platform(environment="sandbox", return_state=True))
    components = {name: copy.copy(run) for name, run in board.runs.items()}
    return PlatformRun(state, components, helm_list(helm, stack))


@pytest.fixture(scope="module")
def first_run(
    prefect_api: None,
    dns_token_block: str,
    helm_binary: str,
    stack: SandboxStack,
    target: PlatformTarget,
) -> PlatformRun:
    """Every workflow on a sandbox where nothing exists yet."""
    assert helm_list(helm_binary, stack) == {}
    return run_platform(target, helm_binary, stack)


@dataclass
class Rerun:
    before: dict[str, dict[str, Any]]
    run: PlatformRun
    aws: Counter[str]


@pytest.fixture(scope="module")
def second_run(
    first_run: PlatformRun, helm_binary: str, stack: SandboxStack, target: PlatformTarget
) -> Rerun:
    """The same run again, counting every AWS operation the flow's clients call."""
    assert first_run.state.is_completed(), first_run.state.message
    operations = AwsOperations()
    aws_clients(target.aws_credentials, target.region).register("before-call", operations)
    before = helm_list(helm_binary, stack)
    run = run_platform(target, helm_binary, stack)
    return Rerun(before, run, Counter(operations.seen))


def result_of(run: PlatformRun, workflow: str, component: str) -> dict[str, Any]:
    return run.state.result()[workflow][component]


# ------------------------------------------------------------------------ the first run


def test_platform_run_completes_with_every_component_ready(first_run: PlatformRun):
    assert first_run.state.is_completed(), first_run.state.message
    outcome = first_run.state.result()
    assert sorted(outcome) == sorted(WORKFLOWS)
    assert sorted(first_run.components) == sorted(COMPONENTS)
    runs = first_run.components.items()
    assert {n: (r.status, r.detail) for n, r in runs if r.status != "completed"} == {}
    for component in CATALOGUE.components:
        run = first_run.components[component.name]
        assert run.workflow == component.workflow
        assert run.started_at is not None and run.finished_at is not None
        if component.workflow != "foundation":
            assert component.name in outcome[component.workflow]
    for release in WORKFLOW_RELEASES:
        assert result_of(first_run, release.workflow, release.name)["action"] == "installed"


def test_foundation_validation_checks_pass(first_run: PlatformRun):
    checks = first_run.state.result()["foundation"]["checks"]
    assert [c["name"] for c in checks] == [
        "nodes_ready",
        "kube_system_running_pods",
        "cluster_info",
        "eks_status",
    ]
    assert all(c["passed"] for c in checks), checks


def test_helm_lists_every_release_deployed_at_its_pinned_version(first_run: PlatformRun):
    assert sorted(first_run.releases) == sorted(c.chart.release for c in RELEASES if c.chart)
    for component in RELEASES:
        assert component.chart is not None
        row = first_run.releases[component.chart.release]
        assert (row["namespace"], row["chart"], row["status"], row["revision"]) == (
            component.namespace_in(SPEC),
            f"{component.chart.name}-{component.chart.version}",
            "deployed",
            "1",
        ), component.name


def test_gates_report_what_they_found(first_run: PlatformRun, kube: client.ApiClient):
    observability = result_of(first_run, "observability", "observability-gate")
    assert observability["active_targets"] > 0
    assert 0 < observability["up"] <= observability["active_targets"]

    ingress = result_of(first_run, "ingress", "ingress-gate")
    services = (
        client.CoreV1Api(kube)
        .list_namespaced_service(
            SPEC.namespaces["ingress"], label_selector="app.kubernetes.io/instance=ambassador"
        )
        .items
    )
    balancers = {
        s.metadata.name: s.status.load_balancer.ingress[0].hostname
        for s in services
        if s.spec.type == "LoadBalancer"
    }
    assert balancers and ingress == {"load_balancers": balancers}


def test_storage_crds_and_the_dns_token_are_in_place(
    first_run: PlatformRun, kube: client.ApiClient, target: PlatformTarget
):
    s3 = aws_clients(target.aws_credentials, target.region)("s3")
    for part in ("mimir", "loki"):
        created = result_of(first_run, "observability", f"{part}-storage")
        assert created["bucket"] == bucket_name(SPEC, part, ACCOUNT_ID)
        assert f"created bucket {created['bucket']}" in created["changes"]
        s3.head_bucket(Bucket=created["bucket"])
        rules = s3.get_bucket_lifecycle_configuration(Bucket=created["bucket"])["Rules"]
        assert [r["ID"] for r in rules] == ["platform-retention"]

    crds = result_of(first_run, "observability", "prometheus-crds")
    assert crds["crds"] > 0
    assert all(change.startswith("created ") for change in crds["changes"]), crds["changes"]
    extensions = client.ApiextensionsV1Api(kube)
    groups = Counter(c.spec.group for c in extensions.list_custom_resource_definition().items)
    assert groups["monitoring.coreos.com"] == crds["crds"]

    secret = client.CoreV1Api(kube).read_namespaced_secret(
        DNS_TOKEN_SECRET, CATALOGUE.component("external-dns").namespace_in(SPEC)
    )
    assert base64.b64decode(secret.data["api-token"]).decode() == DNS_TOKEN


# --------------------------------------------------------------------------- scheduling


def test_components_start_as_soon_as_their_own_needs_are_met(first_run: PlatformRun):
    runs = first_run.components

    def started(name: str) -> float:
        value = runs[name].started_at
        assert value is not None, name
        return value

    def finished(name: str) -> float:
        value = runs[name].finished_at
        assert value is not None, name
        return value

    for name, needs in NEEDS.items():
        for need in needs:
            assert started(name) >= finished(need), f"{name} started before {need} finished"

    # no barrier between phases of a workflow: DNS needs no certificate
    assert "cert-manager" not in NEEDS["external-dns"]
    assert started("external-dns") < finished("cert-manager")
    # nor between workflows: the buckets need nothing, so they do not wait for the cluster
    for bucket in ("mimir-storage", "loki-storage"):
        assert started(bucket) < finished("eks"), bucket
    # ... and tekton needs observability only, not the ingress workflow's gateway
    assert started("tekton") < finished("ingress-gate")


# ------------------------------------------------------------------------ the second run


def test_second_run_changes_nothing(second_run: Rerun):
    run = second_run.run
    assert run.state.is_completed(), run.state.message
    assert {n: r.status for n, r in run.components.items()} == {n: "completed" for n in COMPONENTS}
    assert run.releases == second_run.before  # same revisions, same update times
    for release in WORKFLOW_RELEASES:
        result = result_of(run, release.workflow, release.name)
        assert (result["action"], result["revision"]) == ("unchanged", 1), release.name
    for part in ("mimir", "loki"):
        assert result_of(run, "observability", f"{part}-storage")["changes"] == []
    assert result_of(run, "observability", "prometheus-crds")["changes"] == []


def test_second_run_makes_no_mutating_aws_call(second_run: Rerun):
    seen = second_run.aws
    mutating = {op: n for op, n in seen.items() if not op.startswith(READ_ONLY)}
    assert mutating == {}
    # the hook saw the run's calls: the foundation's reads and the buckets' checks
    assert {"DescribeVpcs", "DescribeCluster", "HeadBucket", "GetBucketLifecycleConfiguration"} <= (
        set(seen)
    )


# --------------------------------------------------------------------- a workflow alone


def recorded_task_runs(flow_runs: FlowRunFilter, expected: Counter[str]) -> list[TaskRun]:
    """The task runs of the flow runs, once ``expected`` (names and counts) are recorded in
    a final state; Prefect records them asynchronously, so this polls for a while."""

    async def read() -> list[TaskRun]:
        async with get_client() as prefect:
            return await prefect.read_task_runs(flow_run_filter=flow_runs)

    deadline = time.monotonic() + 15
    while True:
        runs = asyncio.run(read())
        final = Counter(r.name for r in runs if r.state is not None and r.state.is_final())
        if final >= expected or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


def subflow_runs(parent_id: Any) -> list[FlowRun]:
    async def read() -> list[FlowRun]:
        async with get_client() as prefect:
            return await prefect.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])
                )
            )

    return asyncio.run(read())


def test_each_component_ran_once_with_no_gate_standing_in_for_a_need(first_run: PlatformRun):
    """Inside bootstrap_platform a need in another workflow is met by that component
    itself: no workflow runs another workflow's gate on its own."""
    subflows = subflow_runs(first_run.state.state_details.flow_run_id)
    assert sorted(unstamped(f.name) for f in subflows) == sorted(f"{w}-sandbox" for w in WORKFLOWS)
    expected = Counter([*COMPONENTS, "validate-foundation"])

    runs = recorded_task_runs(
        FlowRunFilter(id=FlowRunFilterId(any_=[f.id for f in subflows])), expected
    )

    assert Counter(r.name for r in runs) == expected
    assert all(r.state is not None and r.state.is_completed() for r in runs)


def test_gitops_alone_checks_its_prerequisites_through_the_gates(
    second_run: Rerun, target: PlatformTarget
):
    board.reset()
    state = asyncio.run(gitops(environment="sandbox", return_state=True))

    assert state.is_completed(), state.message
    result = state.result()
    assert sorted(result) == ["argocd", "tekton"]
    assert {result[n]["action"] for n in result} == {"unchanged"}
    gates = {"ingress-gate", "observability-gate"}
    expected = Counter([*gates, "argocd", "tekton"])
    gitops_run = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
    runs = recorded_task_runs(gitops_run, expected)
    # each prerequisite checked once, however many components need it
    assert Counter(r.name for r in runs) == expected
    for run in runs:
        assert run.state is not None and run.state.is_completed(), (run.name, run.state)
        expected_task = "check_gate" if run.name in gates else "converge_release"
        assert run.task_key.startswith(expected_task), (run.name, run.task_key)
    assert {n: board.runs[n].status for n in gates} == {n: "completed" for n in gates}
    # the components waited for the gates that stand for their needs
    for name in ("argocd", "tekton"):
        for need in NEEDS[name]:
            assert board.runs[name].started_at >= board.runs[need].finished_at, (name, need)
