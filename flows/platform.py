"""``bootstrap_platform``: the run users start. Every chosen workflow flow runs at once as
a subflow; their components share one readiness record, so each starts the moment its
own needs (in any workflow) are met - the DAG, not the guide's phases, sets the pace."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow

from blocks.target import PlatformTarget
from blueprint.catalogue import load_catalogue
from blueprint.errors import SpecError
from blueprint.loader import load_spec
from blueprint.spec import WORKFLOWS
from flows.dag import Readiness, readiness
from flows.foundation import foundation
from flows.workflows import data_services, gitops, ingress, observability, security, service_mesh
from tasks.pace import REAL_TIME

WORKFLOW_FLOWS = {
    "foundation": foundation,
    "ingress": ingress,
    "observability": observability,
    "gitops": gitops,
    "security": security,
    "service-mesh": service_mesh,
    "data-services": data_services,
}


class WorkflowsFailed(RuntimeError):
    pass


def chosen_workflows(workflows: list[str] | None) -> list[str]:
    chosen = list(workflows) if workflows else list(WORKFLOWS)
    unknown = [w for w in chosen if w not in WORKFLOW_FLOWS]
    if unknown:
        raise SpecError([f"workflows: unknown {', '.join(unknown)}; known: {', '.join(WORKFLOWS)}"])
    return [w for w in WORKFLOWS if w in chosen]  # the guide's order, for readable output


@flow(name="bootstrap_platform", flow_run_name="bootstrap-{target.environment}")
async def bootstrap_platform(
    target: PlatformTarget,
    spec_file: str | None = None,
    time_scale: float = REAL_TIME,
    workflows: list[str] | None = None,
) -> dict[str, Any]:
    """Bring the platform (or the chosen workflows) to every component Ready."""
    load_spec(target.environment, spec_file)  # invalid input stops before any call
    chosen = chosen_workflows(workflows)
    names = [c.name for c in load_catalogue().components if c.workflow in chosen]
    token = readiness.set(Readiness(names))
    try:
        states = await asyncio.gather(
            *(
                WORKFLOW_FLOWS[w](
                    target=target, spec_file=spec_file, time_scale=time_scale, return_state=True
                )
                for w in chosen
            )
        )
    finally:
        readiness.reset(token)
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
