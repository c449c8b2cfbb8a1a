"""``teardown_platform``: delete everything the platform owns in its target, in the order
that lets each deletion succeed, then check that nothing is left.

It refuses to start unless ``confirm`` repeats the environment's name, the way a console
asks to type the name of what it is about to delete. Every step is a task of its own, so
the run's page shows the teardown step by step; a markdown artifact ``teardown-<env>``
lists what each step deleted. A teardown of an empty target deletes nothing and passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from blueprint.catalogue import Catalogue, load_catalogue
from blueprint.spec import WORKFLOWS
from flows.budget import budget, exclusive
from flows.futures import settled
from flows.parameters import ENVIRONMENT, SPEC_FILE, TIME_SCALE
from flows.run_names import run_name
from flows.workflow import run_context
from tasks.context import RunContext
from tasks.runner import IN_CLUSTER, RUNNER_ENV, in_cluster
from tasks.teardown import aws as aws_steps
from tasks.teardown import check as check_steps
from tasks.teardown import cluster as cluster_steps
from tasks.teardown import releases as release_steps

CONFIRM = Field(
    ...,
    description="Type the environment's name again to confirm: the run deletes everything "
    "the platform owns there (releases, cluster, buckets and their data, network)",
)


class ConfirmationMismatch(ValueError):
    pass


class TeardownFailed(RuntimeError):
    pass


class InsideTheCluster(RuntimeError):
    pass


def check_confirmation(environment: str, confirm: Any) -> None:
    if confirm != environment:
        # Called from Python without it, the parameter arrives as its unfilled Field.
        got = repr(confirm) if isinstance(confirm, str) else "nothing"
        raise ConfirmationMismatch(
            f"confirm: type the environment's name {environment!r} to tear it down "
            f"(got {got}); nothing was touched"
        )


@dataclass
class Record:
    """What the teardown did, step by step: the return value and the artifact."""

    environment: str
    cluster: str = "not checked"
    steps: list[dict[str, Any]] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    outcome: str = "running"

    def add(self, step: str, deleted: list[str]) -> None:
        self.steps.append({"step": step, "deleted": list(deleted)})

    @property
    def deleted(self) -> list[str]:
        return [item for step in self.steps for item in step["deleted"]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "cluster": self.cluster,
            "steps": self.steps,
            "deleted": len(self.deleted),
            "checked": self.checked,
            "outcome": self.outcome,
        }

    def markdown(self) -> str:
        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")

        lines = [
            f"# Teardown of `{self.environment}`",
            "",
            f"- cluster API: {cell(self.cluster)}",
            f"- deleted: {len(self.deleted)}",
            f"- checked afterwards: {cell(', '.join(self.checked) or 'not reached')}",
            "",
            "| step | deleted |",
            "|---|---|",
        ]
        for step in self.steps:
            items = step["deleted"] or ["(nothing)"]
            lines += [f"| {step['step']} | {cell(item)} |" for item in items]
        lines += ["", "## Outcome", "", "```", self.outcome, "```"]
        return "\n".join(lines)


async def outcome(step: str, future: PrefectFuture) -> Any:
    """The task's result, or ``TeardownFailed`` naming the step and its error."""
    state = await settled(future)
    if state.is_completed():
        return future.result()
    if state.is_failed() or state.is_crashed():
        try:
            future.result()
        except Exception as exc:
            raise TeardownFailed(f"{step}: {type(exc).__name__}: {exc}") from exc
    raise TeardownFailed(f"{step}: not run: {state.message or state.name}")


async def run_step(record: Record, step: str, task: Any, *args: Any) -> list[str]:
    deleted = await outcome(step, task.submit(*args))
    record.add(step, deleted)
    return deleted


async def uninstall_releases(
    ctx: RunContext, catalogue: Catalogue, releases: list[release_steps.Release], record: Record
) -> None:
    """Every release at once, each waiting only for its dependants; helm's concurrency
    bound (runtime.helm_concurrency) holds as for installs."""
    futures: dict[str, PrefectFuture] = {}
    for release, before in release_steps.uninstall_plan(ctx.spec, catalogue, releases):
        futures[release.key] = release_steps.uninstall.submit(
            ctx, release, wait_for=[futures[b.key] for b in before]
        )
    deleted, failures = [], []
    for key, future in futures.items():
        try:
            deleted += await outcome(f"uninstall {key}", future)
        except TeardownFailed as exc:
            failures.append(str(exc))
    record.add("helm-releases", deleted)
    if failures:
        raise TeardownFailed("\n".join(failures))


async def empty_cluster(ctx: RunContext, catalogue: Catalogue, record: Record) -> None:
    """LoadBalancer Services and their load balancers, releases, namespaces, then the
    cluster-scoped objects."""
    # Reading the charts' CRDs needs no cluster: it runs while the cluster empties.
    crds = cluster_steps.shipped_crds.submit(ctx, catalogue)
    releases = await outcome("find-releases", release_steps.find_releases.submit(ctx, catalogue))
    services = await outcome(
        "load-balancer-services", cluster_steps.delete_load_balancer_services.submit(ctx, releases)
    )
    record.add("load-balancer-services", [f"Service {s}" for s in services])
    await run_step(
        record, "cloud-load-balancers", cluster_steps.remove_cloud_load_balancers, ctx, services
    )
    await uninstall_releases(ctx, catalogue, releases, record)
    await run_step(record, "namespaces", cluster_steps.delete_namespaces, ctx)
    names = await outcome("chart-crds", crds)
    await run_step(record, "cluster-objects", cluster_steps.delete_cluster_objects, ctx, names)


async def teardown(ctx: RunContext, catalogue: Catalogue, record: Record) -> None:
    unreachable = await outcome("cluster-access", release_steps.cluster_access.submit(ctx))
    record.cluster = "answers" if unreachable is None else f"out of reach: {unreachable}"
    if unreachable is None:
        await empty_cluster(ctx, catalogue, record)
    else:
        get_run_logger().warning(
            "cluster API out of reach (%s): what runs in it goes with the cluster; load "
            "balancers tagged for it are deleted directly",
            unreachable,
        )
        await run_step(
            record, "cloud-load-balancers", cluster_steps.remove_cloud_load_balancers, ctx, []
        )
    parts = [c.storage for c in catalogue.components if c.kind == "s3-bucket" and c.storage]
    buckets: dict[str, PrefectFuture] = {}
    problems = []
    try:
        for task in aws_steps.WHILE_NODES_RUN:
            await run_step(record, task.name, task, ctx)
        # Mimir and Loki no longer write: the buckets go alongside the rest.
        buckets = {part: aws_steps.delete_platform_bucket.submit(ctx, part) for part in parts}
        for task in aws_steps.AFTER_NODES:
            await run_step(record, task.name, task, ctx)
    except TeardownFailed as exc:
        problems.append(str(exc))
    for part, future in buckets.items():
        try:
            record.add(f"bucket-{part}", await outcome(f"bucket-{part}", future))
        except TeardownFailed as exc:
            problems.append(str(exc))
    if problems:
        raise TeardownFailed("\n".join(problems))
    record.checked = await outcome(
        "nothing-left", check_steps.nothing_left.submit(ctx, catalogue, unreachable is None)
    )


@flow(
    name="teardown_platform",
    flow_run_name=run_name("teardown"),
    task_runner=ThreadPoolTaskRunner(max_workers=32),
    description="Delete everything the platform owns in its target, load balancers and "
    "releases first, then the cluster's namespaces, the buckets and the AWS foundation; "
    "fails naming whatever is left.",
)
async def teardown_platform(
    environment: str = ENVIRONMENT,
    time_scale: float | None = TIME_SCALE,
    spec_file: str | None = SPEC_FILE,
    confirm: str = CONFIRM,
) -> dict[str, Any]:
    """Tear the platform down; refuses unless ``confirm`` equals ``environment``."""
    check_confirmation(environment, confirm)  # before anything is read or touched
    if in_cluster():
        raise InsideTheCluster(
            f"teardown of {environment}: this run executes inside the cluster it would "
            f"delete ({RUNNER_ENV}={IN_CLUSTER}); run it from outside the VPC, from an "
            "address in eks.build_access_cidrs (docs/aws-account.md); nothing was touched"
        )
    ctx = await run_context(environment, spec_file, time_scale)
    record = Record(environment)
    # Deleting takes about as long as creating: the whole platform's budget.
    limit = budget(ctx, list(WORKFLOWS)).run
    try:
        async with exclusive(ctx, limit, "teardown"):
            await teardown(ctx, load_catalogue(), record)
        record.outcome = f"nothing left; {len(record.deleted)} deleted"
    except Exception as exc:
        record.outcome = f"failed: {exc}"
        raise
    finally:
        await acreate_markdown_artifact(
            key=f"teardown-{environment}",
            markdown=record.markdown(),
            description=f"What the teardown of {environment} deleted, step by step.",
        )
    return record.as_dict()
