"""How long a flow may run: its planned finish from the plan, at the run's pace, with margin.

The plan (max durations) says when each workflow's last component finishes; a flow's
budget is that time at the run's pace times ``runtime.budget_margin``, plus
``runtime.budget_allowance`` for overheads that do not scale with the pace. A flow past its
budget stops with the budget named, so every run ends on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from blueprint.catalogue import load_catalogue
from blueprint.plan import plan
from blueprint.units import duration_seconds
from tasks.context import RunContext
from tasks.locks import environment_lock


class BudgetExceeded(TimeoutError):
    """A flow ran past its time budget."""


@dataclass(frozen=True)
class Budget:
    run: float  # seconds for all the chosen workflows
    workflows: dict[str, float]  # seconds for each


def budget(ctx: RunContext, workflows: list[str]) -> Budget:
    planned = plan(ctx.spec, load_catalogue(), "max").components
    runtime = ctx.spec.runtime
    allowance = float(duration_seconds(runtime.budget_allowance))

    def seconds(minutes: float) -> float:
        return round(ctx.pace.seconds(minutes * 60) * runtime.budget_margin + allowance, 1)

    finish = {w: max(c.finish_min for c in planned if c.workflow == w) for w in workflows}
    return Budget(seconds(max(finish.values())), {w: seconds(m) for w, m in finish.items()})


@asynccontextmanager
async def within(seconds: float, what: str) -> AsyncIterator[None]:
    """Cancel the body after ``seconds``; ``BudgetExceeded`` names ``what`` and the budget."""
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            yield
    except TimeoutError:
        if not scope.expired():
            raise
        raise BudgetExceeded(
            f"{what} did not finish within its budget of {seconds:.0f}s (planned finish x "
            "runtime.budget_margin + runtime.budget_allowance)"
        ) from None


@asynccontextmanager
async def exclusive(ctx: RunContext, seconds: float, what: str) -> AsyncIterator[None]:
    """Hold the run's environment (waiting for it at most ``seconds``), and end the body
    within ``seconds``."""
    environment, helm = ctx.spec.platform.environment, ctx.spec.runtime.helm_concurrency
    async with environment_lock(environment, helm, seconds), within(seconds, what):
        yield
