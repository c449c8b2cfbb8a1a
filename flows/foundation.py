"""Workflow 1, foundation: VPC and IAM, the EKS cluster, node groups, add-ons, storage class,
the gate "cluster API accessible", then the guide's validation checks."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from blocks.target import PlatformTarget
from blueprint.loader import load_spec
from flows.workflow import run_workflow
from tasks.context import RunContext
from tasks.foundation import validate_foundation
from tasks.pace import REAL_TIME, Pace

WORKFLOW = "foundation"


class ValidationFailed(RuntimeError):
    pass


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
    results = await run_workflow(WORKFLOW, target, spec_file, time_scale)
    ctx = RunContext(load_spec(target.environment, spec_file), target, Pace(time_scale))
    checks = await asyncio.to_thread(validate_foundation.submit(ctx).result)
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
