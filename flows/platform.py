"""``bootstrap_platform``: the run users start. Every chosen workflow flow runs at once as
a subflow; their components share one readiness record, so each starts the moment its
own needs (in any workflow) are met - the DAG, not the guide's phases, sets the pace."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow

from blueprint.catalogue import load_catalogue
from blueprint.errors import SpecError
from blueprint.plan import plan
from blueprint.spec import WORKFLOWS
from flows.dag import Readiness, readiness
from flows.foundation import foundation
from flows.parameters import ENVIRONMENT, SPEC_FILE, TIME_SCALE, WORKFLOW_SUBSET, Workflow
from flows.workflow import run_context
from flows.workflows import data_services, gitops, ingress, observability, security, service_mesh

WORKFLOW_FLOWS = {
    "foundation": foundation,
    "ingress": ingress,
    "observability": observability,
    "gitops": gitops,
    "security": security,
    "service-mesh": service_mesh,
    "data-services": data_services,
}


SUBFLOW_STAGGER_SECONDS = 0.3


class WorkflowsFailed(RuntimeError):
    pass


def chosen_workflows(workflows: list[str] | None) -> list[str]:
    chosen = list(workflows) if workflows else list(WORKFLOWS)
    unknown = [w for w in chosen if w not in WORKFLOW_FLOWS]
    if unknown:
        raise SpecError([f"workflows: unknown {', '.join(unknown)}; known: {', '.join(WORKFLOWS)}"])
    return [w for w in WORKFLOWS if w in chosen]  # the guide's order, for readable output


@flow(name="bootstrap_platform", flow_run_name="bootstrap-{environment}")
async def bootstrap_platform(
    environment: str = ENVIRONMENT,
    workflows: list[Workflow] | None = WORKFLOW_SUBSET,
    time_scale: float | None = TIME_SCALE,
    spec_file: str | None = SPEC_FILE,
) -> dict[str, Any]:
    """Bring the platform (or the chosen workflows) to every component Ready."""
    ctx = await run_context(environment, spec_file, time_scale)  # bad input stops here
    spec = ctx.spec
    catalogue = load_catalogue()
    chosen = chosen_workflows(workflows)
    names = [c.name for c in catalogue.components if c.workflow in chosen]
    # Workflows whose first component can start earliest go first (foundation, then the
    # observability buckets); starts are staggered because creating many flow runs at the
    # same instant makes Prefect's SQLite database answer 503 and the client back off.
    planned = plan(spec, catalogue).components
    first_start = {w: min(c.start_min for c in planned if c.workflow == w) for w in chosen}
    ordered = sorted(chosen, key=lambda w: first_start[w])

    async def start(workflow: str, delay: float):
        await asyncio.sleep(delay)
        return await WORKFLOW_FLOWS[workflow](
            environment=environment,
            time_scale=ctx.pace.time_scale,
            spec_file=spec_file,
            return_state=True,
        )

    token = readiness.set(Readiness(names))
    try:
        started = await asyncio.gather(
            *(start(w, i * SUBFLOW_STAGGER_SECONDS) for i, w in enumerate(ordered))
        )
    finally:
        readiness.reset(token)
    states = [started[ordered.index(w)] for w in chosen]
    outcome: dict[str, Any] = {}
    failed = []
    for workflow, state in zip(chosen, states, strict=True):
        if state.is_completed():
            outcome[workflow] = await state.aresult()
        else:
            failed.append(f"{workflow}: {state.message or state.name}")
    if failed:
        raise WorkflowsFailed("workflows failed:\n" + "\n".join(failed))
    return outcome
