"""What every workflow flow does: load the spec and check its outside inputs, then run its
components by their needs; started alone, also hold the environment and keep to a budget."""

from __future__ import annotations

from typing import Any

from blocks.target import load_target
from blueprint.catalogue import Catalogue, Component, load_catalogue
from blueprint.loader import load_spec
from blueprint.pace import Pace
from blueprint.plan import resolve_needs
from flows.budget import budget, exclusive
from flows.dag import readiness, run_components
from flows.futures import settled
from flows.launchers import submit, task_options
from tasks.context import RunContext
from tasks.inputs import check_reach, preflight
from tasks.platform import check_gate
from tasks.progress import board


def gate_of(catalogue: Catalogue, workflow: str) -> Component | None:
    return next(
        (c for c in catalogue.components if c.workflow == workflow and c.kind == "gate"), None
    )


def components_of(catalogue: Catalogue, workflows: list[str]) -> list[Component]:
    return [c for c in catalogue.components if c.workflow in workflows]


async def run_context(
    environment: str, spec_file: str | None, time_scale: float | None
) -> RunContext:
    """The spec and the target a run acts on; invalid input stops here, before any call.
    ``time_scale`` overrides the target's own pace."""
    spec = load_spec(environment, spec_file)
    target = await load_target(environment)
    return RunContext(spec, target, Pace(target.time_scale if time_scale is None else time_scale))


def namespaces_of(ctx: RunContext, catalogue: Catalogue) -> dict[str, str]:
    return {c.name: ns for c in catalogue.components if (ns := c.namespace_in(ctx.spec))}


async def run_workflow(workflow: str, ctx: RunContext) -> dict[str, Any]:
    """Run the workflow's components. Inside ``bootstrap_platform`` the parent has checked
    the inputs and holds the environment; started alone, the workflow does both itself."""
    catalogue = load_catalogue()
    components = components_of(catalogue, [workflow])
    if (shared := readiness.get()) is not None:
        shared.begin(workflow)
        return await _run(workflow, ctx, catalogue, components)
    preflight(ctx.spec, components)  # bad input stops here, before anything is touched
    check_reach(ctx.spec, ctx.aws)  # ... and a cluster this run cannot reach
    async with exclusive(ctx, budget(ctx, [workflow]).run, f"workflow {workflow}"):
        return await _run(workflow, ctx, catalogue, components)


async def _run(
    workflow: str, ctx: RunContext, catalogue: Catalogue, components: list[Component]
) -> dict[str, Any]:
    namespaces = namespaces_of(ctx, catalogue)

    async def through_gate(need: str) -> bool:
        """Started alone: a need in another workflow is met when that workflow's gate
        passes (the real check, with its budget)."""
        owner = catalogue.component(need)
        gate = owner if owner.kind == "gate" else gate_of(catalogue, owner.workflow)
        if gate is None:
            return False
        state = await settled(check_gate.with_options(**task_options(ctx, gate)).submit(ctx, gate))
        if not state.is_completed():
            board.fail(gate.name, gate.workflow, f"gate not passed: {state.message}")
        return state.is_completed()

    return await run_components(
        components,
        resolve_needs(ctx.spec, catalogue),
        lambda c, got, upstream: submit(ctx, c, got, namespaces, upstream),
        through_gate,
    )
