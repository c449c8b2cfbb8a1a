"""What every workflow flow does: load the spec, then run its components by their needs."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect.blocks.system import Secret

from blocks.target import load_target
from blueprint.catalogue import Catalogue, Component, load_catalogue
from blueprint.errors import SpecError
from blueprint.loader import load_spec
from blueprint.plan import resolve_needs
from flows.dag import run_components
from flows.launchers import gate_task, launchers
from tasks.context import RunContext
from tasks.pace import Pace
from tasks.progress import board


def gate_of(catalogue: Catalogue, workflow: str) -> Component | None:
    return next(
        (c for c in catalogue.components if c.workflow == workflow and c.kind == "gate"), None
    )


def preflight(ctx: RunContext, components: list[Component]) -> None:
    """Inputs a run needs that live outside the spec, checked before anything is touched."""
    problems = []
    if any(c.name == "external-dns" for c in components):
        block = ctx.spec.ingress.external_dns.token_secret_block
        try:
            Secret.load(block, _sync=True)
        except ValueError:
            problems.append(
                f"ingress.external_dns.token_secret_block: no Prefect Secret block {block!r} "
                "(create it with the Cloudflare API token)"
            )
    if problems:
        raise SpecError(problems)


async def run_context(
    environment: str, spec_file: str | None, time_scale: float | None
) -> RunContext:
    """The spec and the target a run acts on; invalid input stops here, before any call.
    ``time_scale`` overrides the target's own pace."""
    spec = load_spec(environment, spec_file)
    target = await load_target(environment)
    return RunContext(spec, target, Pace(target.time_scale if time_scale is None else time_scale))


async def run_workflow(workflow: str, ctx: RunContext) -> dict[str, Any]:
    spec = ctx.spec
    catalogue = load_catalogue()
    components = [c for c in catalogue.components if c.workflow == workflow]
    preflight(ctx, components)
    namespaces = {c.name: ns for c in catalogue.components if (ns := c.namespace_in(spec))}

    async def through_gate(need: str) -> bool:
        """Started alone: a need in another workflow is met when that workflow's gate
        passes (the real check, with its budget)."""
        owner = catalogue.component(need)
        gate = owner if owner.kind == "gate" else gate_of(catalogue, owner.workflow)
        if gate is None:
            return False
        future = gate_task(ctx, gate).submit(ctx, gate)
        await asyncio.to_thread(future.wait)
        if not future.state.is_completed():
            board.fail(gate.name, gate.workflow, f"gate not passed: {future.state.message}")
        return future.state.is_completed()

    return await run_components(
        components, resolve_needs(spec, catalogue), launchers(ctx, namespaces), through_gate
    )
