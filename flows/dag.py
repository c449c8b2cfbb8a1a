"""Submit components as Prefect tasks in dependency order, each waiting only for its needs.

Prefect starts a submitted task once every future in its ``wait_for`` has completed, so a
component starts the moment its own needs are met, not at a phase barrier. If a need
fails, its dependants never run (Prefect marks them as not ready) and the flow reports
which component failed first and why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from prefect.futures import PrefectFuture, wait

from blueprint.catalogue import Component
from blueprint.graph import topological_order
from tasks.progress import board

Launcher = Callable[[Component, dict[str, PrefectFuture], list[PrefectFuture]], PrefectFuture]


class ComponentsFailed(RuntimeError):
    def __init__(self, failures: dict[str, str]):
        self.failures = failures
        lines = [f"{name}: {reason}" for name, reason in failures.items()]
        super().__init__("components failed:\n" + "\n".join(lines))


def submit_components(
    components: list[Component],
    needs: Mapping[str, Mapping[str, str]],
    launchers: Mapping[str, Launcher],
) -> dict[str, PrefectFuture]:
    """Submit every component through the launcher of its kind, needs first."""
    by_name = {c.name: c for c in components}
    local_needs = {n: [d for d in needs[n] if d in by_name] for n in by_name}
    futures: dict[str, PrefectFuture] = {}
    for name in topological_order(local_needs):
        component = by_name[name]
        board.plan(name, component.workflow)
        upstream = [futures[d] for d in local_needs[name]]
        futures[name] = launchers[component.kind](component, futures, upstream)
    return futures


async def settle(futures: Mapping[str, PrefectFuture]) -> dict[str, Any]:
    """Wait for every future (off the event loop) and return results; raise
    ``ComponentsFailed`` naming each failed component with its error."""
    await asyncio.to_thread(wait, list(futures.values()))
    results: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for name, future in futures.items():
        state = future.state
        if state.is_completed():
            results[name] = future.result()
        elif state.is_failed() or state.is_crashed():
            try:
                future.result()
            except Exception as exc:
                failures[name] = f"{type(exc).__name__}: {exc}"
        elif name in board.runs:
            board.skip(name, board.runs[name].workflow, f"not run: {state.message or state.name}")
    if failures:
        raise ComponentsFailed(failures)
    return results
