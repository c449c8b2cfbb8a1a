"""Every run ends on its own, in bounded time, with the cause named (issue: never hang,
never collide, fail fast). Flows and tasks run for real with Prefect on an in-process
sandbox; each test would hang, collide or retry for nothing without what it checks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import flow, get_client, task
from prefect.blocks.system import Secret
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.task_runners import ThreadPoolTaskRunner

from blocks.target import PlatformTarget
from blueprint.catalogue import load_catalogue
from blueprint.errors import SpecError
from blueprint.loader import load_spec
from blueprint.pace import Pace
from blueprint.plan import resolve_needs
from blueprint.spec import dns_token_block
from blueprint.units import duration_seconds
from flows import launchers
from flows.dag import run_components
from flows.platform import bootstrap_platform
from flows.revalidate import revalidate_platform
from sandbox.settings import Fault, SandboxSettings
from sandbox.stack import SandboxStack
from tasks.aws.clients import aws_clients
from tasks.aws.eks import ensure_cluster
from tasks.aws.iam import ensure_roles
from tasks.aws.inventory import aws_inventory
from tasks.aws.vpc import ensure_network
from tasks.context import RunContext
from tasks.foundation import converge_node_groups
from tasks.gates import GateRefused, retry_if_not_ready
from tasks.inputs import preflight
from tasks.locks import EnvironmentBusy, environment_lock, helm_slots_name, lock_name
from tasks.platform import check_gate, converge_chart_crds, converge_release
from tasks.progress import board
from tests.call_log import CallLog

pytestmark = pytest.mark.e2e

SPEC = load_spec("sandbox")
CATALOGUE = load_catalogue()
FLOW_TIME_SCALE = 0.2
WATCHDOG_SECONDS = 240  # a run that has not ended by then hangs: the test fails, not waits


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxStack]:
    with SandboxStack(tmp_path_factory.mktemp("sandbox"), SandboxSettings()) as running:
        yield running


@pytest.fixture(autouse=True)
def no_fault_outlives_its_test(stack: SandboxStack) -> Iterator[None]:
    yield
    stack.settings.faults.clear()
    stack.settings.latency.time_scale = 0.0


@pytest.fixture(scope="module")
def ctx(prefect_api: None, target: PlatformTarget, helm_binary: str) -> RunContext:
    return RunContext(SPEC, target, Pace(FLOW_TIME_SCALE))


def ended(run: Callable[[], Any], seconds: float = WATCHDOG_SECONDS) -> Any:
    """Run a flow in a thread (in this context: the test's Prefect settings); fail, rather
    than hang, when it does not end in time."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(contextvars.copy_context().run, run)
        try:
            return future.result(timeout=seconds)
        except concurrent.futures.TimeoutError:
            pytest.fail(f"the run did not end within {seconds:.0f}s: it hangs")


def task_runs_of(flow_run_id: Any) -> list[TaskRun]:
    async def read() -> list[TaskRun]:
        async with get_client() as client:
            children = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
                )
            )
            ids = [flow_run_id, *(c.id for c in children)]
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
            )

    deadline = time.monotonic() + 15  # task run states reach the API asynchronously
    while True:
        runs = asyncio.run(read())
        if all(r.state and r.state.is_final() for r in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.3)


def site_file(tmp_path: Path, **overrides: Any) -> str:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return str(path)


# ------------------------------------------------------------------ 1. bad input, early


def test_a_missing_secret_block_stops_the_run_before_anything_is_touched(
    ctx: RunContext, dns_token_block: str, tmp_path: Path
):
    spec_file = site_file(
        tmp_path, ingress={"external_dns": {"token_secret_block": "no-such-token"}}
    )
    calls = CallLog()
    aws_clients(ctx.target.aws_credentials, ctx.target.region).register("before-call", calls)
    board.reset()
    began = time.monotonic()

    state = ended(
        lambda: asyncio.run(
            bootstrap_platform(environment="sandbox", spec_file=spec_file, return_state=True)
        )
    )

    assert state.is_failed()
    assert "'no-such-token'" in str(state.message) and "token_secret_block" in str(state.message)
    assert time.monotonic() - began < 60
    assert calls.mutating() == []
    assert aws_inventory(SPEC, aws_clients(ctx.target.aws_credentials, ctx.target.region)) == []
    assert board.runs == {}  # no component started, or even planned


def test_a_launcher_that_raises_fails_its_component_and_the_run_still_ends(
    ctx: RunContext, dns_token_block: str, monkeypatch: pytest.MonkeyPatch
):
    def broken(*_: Any) -> Any:
        raise RuntimeError("the bucket launcher broke")

    monkeypatch.setitem(launchers.CALLS, "s3-bucket", broken)
    board.reset()
    workflows = ["foundation", "observability"]

    state = ended(
        lambda: asyncio.run(
            bootstrap_platform(environment="sandbox", workflows=workflows, return_state=True)
        )
    )

    assert state.is_failed()
    runs = board.runs
    for bucket in ("mimir-storage", "loki-storage"):
        assert runs[bucket].status == "failed"
        assert "the bucket launcher broke" in runs[bucket].detail
    # Their dependants do not run and say why; independent work finishes.
    assert runs["mimir"].status == "skipped" and "mimir-storage" in runs["mimir"].detail
    assert runs["loki"].status == "skipped"
    assert runs["foundation-gate"].status == "completed"
    assert runs["prometheus"].status == "completed"

    tasks = {t.name: t for t in task_runs_of(state.state_details.flow_run_id)}
    mimir = tasks["mimir"]
    assert mimir.state is not None and mimir.state.is_cancelled()
    assert "needs not met: mimir-storage" in str(mimir.state.message)
    # Task runs are tagged with their workflow and kind, for the UI's filters.
    assert {"workflow:observability", "kind:helm-release"} <= set(tasks["prometheus"].tags)
    assert {"workflow:foundation", "kind:vpc"} <= set(tasks["vpc"].tags)


@task
def finishes(name: str) -> str:
    return name


def test_finished_needs_are_noticed_without_parking_a_thread_per_waiter(
    prefect_api: None, monkeypatch: pytest.MonkeyPatch
):
    """Each component waits on its needs through done callbacks: with asyncio's thread pool
    out of reach (on 2 cores it holds 6 threads), the whole foundation still runs."""

    def no_parked_threads(*_: Any, **__: Any) -> Any:
        raise AssertionError("a thread was parked to wait for a task")

    monkeypatch.setattr(asyncio, "to_thread", no_parked_threads)
    components = [c for c in CATALOGUE.components if c.workflow == "foundation"]

    async def unmet(need: str) -> bool:
        return False

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=32))
    async def chain() -> dict[str, Any]:
        return await run_components(
            components,
            resolve_needs(SPEC, CATALOGUE),
            lambda c, got, upstream: finishes.with_options(task_run_name=c.name).submit(
                c.name, wait_for=upstream
            ),
            unmet,
        )

    done = ended(lambda: asyncio.run(chain()), 120)
    assert sorted(done) == sorted(c.name for c in components)


# ------------------------------------------------------------------------- 2. timeouts


@pytest.fixture(scope="module")
def fresh(ctx: RunContext, tmp_path_factory: pytest.TempPathFactory) -> RunContext:
    """A context for a cluster of its own, so that its node groups are new."""
    site = site_file(tmp_path_factory.mktemp("fresh"), eks={"cluster_name": "interrupted"})
    return RunContext(load_spec("sandbox", site), ctx.target, ctx.pace)


@pytest.fixture(scope="module")
def foundation_parts(fresh: RunContext, stack: SandboxStack) -> tuple[Any, Any, Any]:
    """The network, roles and an ACTIVE cluster (the sandbox answers at once here)."""
    network = ensure_network(fresh.spec, fresh.aws)
    roles = ensure_roles(fresh.spec, fresh.aws)
    cluster = ensure_cluster(fresh.spec, fresh.aws, network, roles, fresh.pace)
    return network, roles, cluster


def test_every_component_task_carries_its_catalogue_budget(ctx: RunContext):
    for component in CATALOGUE.components:
        options = launchers.task_options(ctx, component)
        assert options["task_run_name"] == component.name
        if component.kind == "gate":  # each attempt bounded, retried while not ready
            assert options["timeout_seconds"] > 0 and options["retries"] > 0, component.name
            assert options["retry_condition_fn"] is retry_if_not_ready
        else:
            budget = ctx.pace.budget(float(duration_seconds(component.timeout or "0s")))
            assert options["timeout_seconds"] == budget, component.name


def test_a_sync_component_blocked_in_a_wait_is_interrupted_at_its_timeout(
    fresh: RunContext, stack: SandboxStack, foundation_parts: tuple[Any, Any, Any]
):
    network, roles, cluster = foundation_parts
    latency = stack.settings.latency
    minutes = dict(latency.minutes)
    # Only node groups take time: 500 guide minutes, 25 s here.
    latency.minutes.update({k: 0.0 for k in minutes} | {"nodegroup": 500.0})
    latency.time_scale = 0.05
    try:
        task = converge_node_groups.with_options(timeout_seconds=2.0, retries=0)
        began = time.monotonic()
        state = task(fresh, network, roles, cluster, return_state=True)
        took = time.monotonic() - began
    finally:
        latency.minutes.update(minutes)
    assert state.is_failed() and state.name == "TimedOut", state.message
    # Its waiter gives up after 30 s at this pace; the task's timeout ends it long before.
    assert took < 12, f"interrupted only after {took:.1f}s"


def test_an_async_helm_release_past_its_timeout_is_cancelled_and_helm_stopped(
    ctx: RunContext, stack: SandboxStack
):
    component = CATALOGUE.component("redis")  # no cluster-wide objects: any namespace
    namespaces = {component.name: "timeout-test"}
    stack.settings.faults.add(Fault("pods-never-ready", "timeout-test/*"))
    task = converge_release.with_options(timeout_seconds=4.0, retries=0)
    began = time.monotonic()
    state = asyncio.run(task(ctx, component, namespaces, return_state=True))
    took = time.monotonic() - began
    assert state.is_failed() and state.name == "TimedOut", state.message
    assert took < 20, f"cancelled only after {took:.1f}s (helm's own --timeout is 30 s)"
    time.sleep(0.5)
    assert helm_processes() == []  # cancelling the task stopped helm

    stack.settings.faults.clear()  # the next run converges what the cancelled one left
    healed = asyncio.run(converge_release.with_options(retries=0)(ctx, component, namespaces))
    assert healed["action"] == "installed" and healed["status"] == "deployed"


def helm_processes() -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"/helm") and b"timeout-test" in b" ".join(argv):
            found.append(int(cmdline.parent.name))
    return found


# -------------------------------------------------------------------------- 3. locks


def test_the_environment_lock_is_exclusive_visible_and_bounded(ctx: RunContext):
    async def scenario() -> dict[str, Any]:
        async with environment_lock("sandbox", SPEC.runtime.helm_concurrency, 5) as held:
            assert held
            async with get_client() as client:
                lock = await client.read_global_concurrency_limit_by_name(lock_name("sandbox"))
                helm = await client.read_global_concurrency_limit_by_name(
                    helm_slots_name("sandbox")
                )
            async with environment_lock("sandbox", 8, 5) as again:  # the same run: passes
                assert again
            other = asyncio.ensure_future(_other_run(skip=True))
            skipped = await other
            try:
                await _other_run(skip=False, wait=1.0)
                waited = "acquired"
            except EnvironmentBusy as exc:
                waited = str(exc)
        return {"lock": lock, "helm": helm, "skipped": skipped, "waited": waited}

    found = asyncio.run(scenario())
    assert (found["lock"].limit, found["lock"].active_slots) == (1, 1)
    assert found["helm"].limit == SPEC.runtime.helm_concurrency
    assert found["skipped"] is False
    assert "platformctl unlock --env sandbox" in found["waited"]


async def _other_run(skip: bool, wait: float = 5) -> bool:
    """Another run of the environment: its own context, so it does not hold the lock."""
    from tasks.locks import held

    held.set(frozenset())
    async with environment_lock("sandbox", 8, wait, skip_if_busy=skip) as got:
        return got


def test_two_runs_that_find_the_lock_free_at_once_take_turns_and_the_second_says_so(
    ctx: RunContext, monkeypatch: pytest.MonkeyPatch
):
    import tasks.locks as locks

    said: list[str] = []
    monkeypatch.setattr(locks, "_logger", lambda: _Recorder(said))
    spans: list[tuple[float, float]] = []

    async def run() -> None:
        locks.held.set(frozenset())
        async with environment_lock("sandbox", 8, 30):
            began = time.monotonic()
            await asyncio.sleep(2 * locks.RACE_SECONDS)
            spans.append((began, time.monotonic()))

    async def both() -> None:
        await asyncio.gather(run(), run())

    ended(lambda: asyncio.run(both()), 60)
    first, second = sorted(spans)
    assert first[1] <= second[0], spans
    assert len([s for s in said if s.startswith("waiting for environment sandbox")]) == 1, said


@dataclass
class _Recorder:
    said: list[str]

    def warning(self, message: str, *args: Any) -> None:
        self.said.append(message % args)

    info = warning


def test_read_only_revalidation_never_waits_and_a_scheduled_remediation_skips(
    ctx: RunContext, monkeypatch: pytest.MonkeyPatch
):
    import flows.revalidate as revalidate

    async def while_held() -> list[State]:
        async with environment_lock("sandbox", 8, 5):
            from tasks.locks import held

            held.set(frozenset())  # the runs below are other runs
            read_only = await revalidate_platform(
                environment="sandbox", workflows=["foundation"], return_state=True
            )
            monkeypatch.setattr(revalidate, "_scheduled", lambda: True)
            remediation = await revalidate_platform(
                environment="sandbox", workflows=["foundation"], remediate=True, return_state=True
            )
            return [read_only, remediation]

    read_only, remediation = ended(lambda: asyncio.run(while_held()), 120)
    assert read_only.is_completed(), read_only.message  # checked, while another run held it
    assert remediation.is_completed() and remediation.name == "Skipped"
    assert "busy" in str(remediation.message)


# ------------------------------------------------------------------------- 4. retries


def test_a_helm_release_retries_an_api_that_did_not_answer(ctx: RunContext, stack: SandboxStack):
    component = CATALOGUE.component("tempo")  # no cluster-wide objects: any namespace
    namespaces = {component.name: "retry-test"}
    # helm's release record is a Secret it creates: the API answers 503 to the first writes.
    stack.settings.faults.add(
        Fault("kube-unavailable", "POST /api/v1/namespaces/retry-test/secrets", count=3)
    )
    task = converge_release.with_options(retry_delay_seconds=0)
    state = asyncio.run(task(ctx, component, namespaces, return_state=True))
    assert state.is_completed(), state.message
    assert stack.settings.faults.fired["kube-unavailable"] >= 1
    assert state.result()["status"] == "deployed"


def test_chart_crds_retry_an_api_that_did_not_answer(ctx: RunContext, stack: SandboxStack):
    component = CATALOGUE.component("prometheus-crds")
    before = stack.settings.faults.fired.get("kube-unavailable", 0)
    stack.settings.faults.add(
        Fault(
            "kube-unavailable",
            "GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/*",
            count=1,
        )
    )
    task = converge_chart_crds.with_options(retry_delay_seconds=0)
    state = asyncio.run(task(ctx, component, return_state=True))
    assert state.is_completed(), state.message
    assert stack.settings.faults.fired["kube-unavailable"] - before == 1


def test_a_gate_fails_at_once_when_refused_and_retries_while_not_ready(
    ctx: RunContext, stack: SandboxStack
):
    gate = CATALOGUE.component("foundation-gate")
    options = {**launchers.task_options(ctx, gate), "retry_delay_seconds": 0.05}

    stack.settings.faults.add(Fault("kube-unavailable", "GET /version", count=2))
    unavailable = stack.settings.faults.fired.get("kube-unavailable", 0)
    passed = check_gate.with_options(**options)(ctx, gate, return_state=True)
    assert passed.is_completed(), passed.message  # not ready twice, then ready
    assert stack.settings.faults.fired["kube-unavailable"] - unavailable == 2

    stack.settings.faults.add(Fault("kube-forbidden", "GET /version"))
    before = stack.settings.faults.fired.get("kube-forbidden", 0)
    began = time.monotonic()
    refused = check_gate.with_options(**options)(ctx, gate, return_state=True)
    assert refused.is_failed()
    assert "access refused (403" in str(refused.message)
    assert stack.settings.faults.fired["kube-forbidden"] - before == 1  # one attempt only
    assert time.monotonic() - began < 10
    with pytest.raises(GateRefused):
        refused.result()


# ------------------------------------------------------------------ 7. secrets per env


def test_a_placeholder_or_empty_token_is_refused_where_the_dns_is_real(
    prefect_api: None, tmp_path: Path
):
    real = load_spec(
        "sandbox",
        site_file(
            tmp_path,
            ingress={
                "external_dns": {
                    "token_secret_block": "real-dns-token",
                    "placeholder_token_allowed": False,
                }
            },
        ),
    )
    components = [CATALOGUE.component("external-dns")]
    for value, wanted in (
        ("sandbox-placeholder-token", "does not hold a Cloudflare API token"),
        ("   ", "is empty"),
    ):
        Secret(value=value).save("real-dns-token", overwrite=True)
        with pytest.raises(SpecError) as refused:
            preflight(real, components)
        assert wanted in str(refused.value) and "'real-dns-token'" in str(refused.value)
    Secret(value="A" * 40).save("real-dns-token", overwrite=True)
    preflight(real, components)  # a token of Cloudflare's form passes


def test_token_blocks_are_per_environment():
    assert dns_token_block(load_spec("sandbox")) == "cloudflare-api-token-sandbox"
    assert dns_token_block(load_spec("production")) == "cloudflare-api-token-production"


def test_the_sandbox_saves_its_placeholder_only_under_its_own_block_name(
    prefect_api: None, stack: SandboxStack, tmp_path: Path
):
    from platformctl.targets import save_sandbox_blocks

    assert stack.target is not None
    named = {"external_dns": {"token_secret_block": "site-token"}}
    site = load_spec("sandbox", site_file(tmp_path, ingress=named))
    save_sandbox_blocks(site, stack.target.to_dict())
    with pytest.raises(ValueError):
        Secret.load("site-token")  # a block a site names is the site's to create
