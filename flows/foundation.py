"""Workflow 1, foundation: VPC and IAM, the EKS cluster, node groups, add-ons, storage class,
the gate "cluster API accessible", then the guide's validation checks."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from blocks.target import PlatformTarget
from blueprint.catalogue import Component, load_catalogue
from blueprint.loader import load_spec
from blueprint.plan import resolve_needs
from flows.dag import settle, submit_components
from tasks import foundation as t
from tasks.gates import retry_policy
from tasks.pace import REAL_TIME, Pace

WORKFLOW = "foundation"


class ValidationFailed(RuntimeError):
    pass


def foundation_launchers(ctx: t.RunContext):
    """How each kind of foundation component is submitted, with the results it needs."""

    def vpc(c: Component, f: dict[str, PrefectFuture], up: list) -> PrefectFuture:
        return t.converge_vpc.submit(ctx, component=c.name, wait_for=up)

    def iam(c: Component, f: dict[str, PrefectFuture], up: list) -> PrefectFuture:
        return t.converge_iam.submit(ctx, component=c.name, wait_for=up)

    def eks(c: Component, f: dict[str, PrefectFuture], up: list) -> PrefectFuture:
        return t.converge_eks.submit(ctx, f["vpc"], f["iam"], component=c.name, wait_for=up)

    def node_groups(c: Component, f: dict[str, PrefectFuture], up: list) -> PrefectFuture:
        return t.converge_node_groups.submit(
            ctx, f["vpc"], f["iam"], f["eks"], component=c.name, wait_for=up
        )

    def addon(c: Component, f: dict[str, PrefectFuture], up: list) -> PrefectFuture:
        return t.converge_addon.submit(ctx, c.addon, f["eks"], component=c.name, wait_for=up)

    def storage_class(c: Component, f: dict[str, PrefectFuture], up: list) -> PrefectFuture:
        return t.converge_storage_class.submit(ctx, component=c.name, wait_for=up)

    def gate(c: Component, f: dict[str, PrefectFuture], up: list) -> PrefectFuture:
        policy = retry_policy(ctx.spec.gates.foundation, ctx.pace)
        return t.foundation_gate.with_options(**policy).submit(ctx, component=c.name, wait_for=up)

    return {
        "vpc": vpc,
        "iam": iam,
        "eks-cluster": eks,
        "node-groups": node_groups,
        "eks-addon": addon,
        "storage-class": storage_class,
        "gate": gate,
    }


@flow(
    name="foundation",
    flow_run_name="foundation-{target.environment}",
    task_runner=ThreadPoolTaskRunner(max_workers=32),
    description="Workflow 1: VPC, IAM, EKS, node groups, add-ons, gate and validation.",
)
async def foundation(
    target: PlatformTarget, spec_file: str | None = None, time_scale: float = REAL_TIME
) -> dict[str, Any]:
    """Converge the foundation; fails if a component or a validation check fails."""
    logger = get_run_logger()
    spec = load_spec(target.environment, spec_file)  # invalid specs stop before any call
    catalogue = load_catalogue()
    ctx = t.RunContext(spec, target, Pace(time_scale))
    components = [c for c in catalogue.components if c.workflow == WORKFLOW]
    futures = submit_components(
        components, resolve_needs(spec, catalogue), foundation_launchers(ctx)
    )
    validation = t.validate_foundation.submit(ctx, wait_for=list(futures.values()))
    results = await settle({**futures, "validate-foundation": validation})
    checks = results.pop("validate-foundation")
    await acreate_table_artifact(
        key="foundation-validation",
        table=checks,
        description="The guide's foundation validation: each check with its measured value.",
    )
    for check in checks:
        logger.info(
            "check %s: %s (value %s, expected %s)",
            check["name"],
            "passed" if check["passed"] else "FAILED",
            check["value"],
            check["expected"],
        )
    failed = [c["name"] for c in checks if not c["passed"]]
    if failed:
        raise ValidationFailed(f"foundation validation failed: {', '.join(failed)}")
    return {"components": sorted(results), "checks": checks}
