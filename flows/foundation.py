"""Workflow 1, foundation: VPC and IAM, the EKS cluster, node groups, add-ons, storage class,
the gate "cluster API accessible", then the guide's validation checks."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.futures import result_of
from flows.parameters import ENVIRONMENT, SPEC_FILE, TIME_SCALE
from flows.run_names import run_name
from flows.workflow import run_context, run_workflow
from tasks.foundation import validate_foundation

WORKFLOW = "foundation"


class ValidationFailed(RuntimeError):
    pass


@flow(
    name="foundation",
    flow_run_name=run_name(WORKFLOW),
    task_runner=ThreadPoolTaskRunner(max_workers=32),
    description="Workflow 1: VPC, IAM, EKS, node groups, add-ons, gate and validation.",
)
async def foundation(
    environment: str = ENVIRONMENT,
    time_scale: float | None = TIME_SCALE,
    spec_file: str | None = SPEC_FILE,
) -> dict[str, Any]:
    """Converge the foundation; fails if a component or a validation check fails."""
    logger = get_run_logger()
    ctx = await run_context(environment, spec_file, time_scale)
    results = await run_workflow(WORKFLOW, ctx)
    checks = await result_of(validate_foundation.submit(ctx))
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
