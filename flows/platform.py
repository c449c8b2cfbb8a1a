"""``bootstrap_platform``: the run users start. Every chosen workflow flow runs at once as
a subflow; their components share one readiness record, so each starts the moment its
own needs (in any workflow) are met - the DAG, not the guide's phases, sets the pace.

Before any workflow starts, the inputs of all of them are checked (bad input touches
nothing), and the run takes the environment's lock (a second run waits). Each subflow has
a timeout from the plan, so the run always ends. A private-only cluster built from outside
is handed to its in-cluster worker when the whole platform is up (``runner.hand_over``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow

from blueprint.catalogue import load_catalogue
from blueprint.errors import SpecError
from blueprint.plan import plan
from blueprint.spec import WORKFLOWS
from flows.budget import budget
from flows.dag import Readiness, readiness
from flows.foundation import foundation
from flows.parameters import ENVIRONMENT, SPEC_FILE, TIME_SCALE, WORKFLOW_SUBSET, Workflow
from flows.run_names import run_name
from flows.workflow import components_of, run_context
from flows.workflows import data_services, gitops, ingress, observability, security, service_mesh
from tasks.foundation import hand_over_to_runner
from tasks.inputs import check_reach, preflight
from tasks.locks import environment_lock
from tasks.runner import building_from_outside

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


@flow(name="bootstrap_platform", flow_run_name=run_name("bootstrap"))
async def bootstrap_platform(
    environment: str = ENVIRONMENT,
    workflows: list[Workflow] | None = WORKFLOW_SUBSET,
    time_scale: float | None = TIME_SCALE,
    spec_file: str | None = SPEC_FILE,
) -> dict[str, Any]:
    """Bring the platform (or the chosen workflows) to every component Ready."""
    ctx = await run_context(environment, spec_file, time_scale)  # bad input stops here
    catalogue = load_catalogue()
    chosen = chosen_workflows(workflows)
    preflight(ctx.spec, components_of(catalogue, chosen))  # ... and here, for every workflow
    check_reach(ctx.spec, ctx.aws)  # ... and when the cluster is out of this run's reach
    limits = budget(ctx, chosen)

    # Workflows whose first component can start earliest go first (foundation, then the
    # observability buckets). Their flow runs are created one at a time: Prefect's SQLite
    # database answers concurrent writes with 503, and the client backs off 2 s, then 4 s.
    planned = plan(ctx.spec, catalogue).components
    first_start = {w: min(c.start_min for c in planned if c.workflow == w) for w in chosen}
    creating = asyncio.Lock()

    async def start(workflow: str, record: Readiness):
        subflow = WORKFLOW_FLOWS[workflow].with_options(timeout_seconds=limits.workflows[workflow])
        try:
            async with creating:
                running = asyncio.ensure_future(
                    subflow(
                        environment=environment,
                        time_scale=ctx.pace.time_scale,
                        spec_file=spec_file,
                        return_state=True,
                    )
                )
                begun = asyncio.ensure_future(record.begun(workflow))
                await asyncio.wait([running, begun], return_when=asyncio.FIRST_COMPLETED)
                begun.cancel()
            return await running
        finally:  # a workflow that stopped early leaves its dependants nothing to wait for
            record.abandon([c.name for c in components_of(catalogue, [workflow])])

    runtime = ctx.spec.runtime
    async with environment_lock(environment, runtime.helm_concurrency, limits.run):
        record = Readiness([c.name for c in components_of(catalogue, chosen)])
        token = readiness.set(record)
        try:
            order = sorted(chosen, key=lambda w: first_start[w])
            started = await asyncio.gather(*(start(w, record) for w in order))
            states = [started[order.index(w)] for w in chosen]
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
        if (
            chosen == list(WORKFLOWS)
            and ctx.spec.runner.hand_over
            and building_from_outside(ctx.spec)
        ):
            # Still under the environment's lock: no run may reopen what this closes.
            outcome["hand-over"] = hand_over_to_runner(ctx)
    return outcome
