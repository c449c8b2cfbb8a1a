"""Run components as Prefect tasks, each started the moment its own needs are met.

Within a workflow flow, a component is submitted with ``wait_for`` on the futures of its
needs, so Prefect starts it as soon as they complete. Needs in *other* workflows are met
in one of two ways:

- inside ``bootstrap_platform`` all workflow flows run concurrently in one event loop and
  share a ``Readiness`` record: a component waits for the other workflow's component to
  complete (not for that whole workflow, and not for a phase barrier);
- a workflow started alone has no such record and checks its prerequisites through the
  real readiness gates of the workflows it needs.

A failed need stops its dependants, which are reported as not run, with the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

from prefect.futures import PrefectFuture

from blueprint.catalogue import Component
from blueprint.graph import topological_order
from tasks.progress import board

Launcher = Callable[[Component, dict[str, PrefectFuture], list[PrefectFuture]], PrefectFuture]
# Checks a need outside the running workflows (a workflow started alone): True when met.
ExternalCheck = Callable[[str], Awaitable[bool]]


class ComponentsFailed(RuntimeError):
    def __init__(self, failures: dict[str, str]):
        self.failures = failures
        lines = [f"{name}: {reason}" for name, reason in failures.items()]
        super().__init__("components failed:\n" + "\n".join(lines))


class Readiness:
    """Which components of this platform run have finished, and how."""

    def __init__(self, components: list[str]):
        self._done = {name: asyncio.Event() for name in components}
        self.ok: dict[str, bool] = {}

    def covers(self, name: str) -> bool:
        return name in self._done

    def finish(self, name: str, ok: bool) -> None:
        self.ok[name] = ok
        self._done[name].set()

    async def wait(self, name: str) -> bool:
        await self._done[name].wait()
        return self.ok[name]


readiness: ContextVar[Readiness | None] = ContextVar("platform_readiness", default=None)


async def run_components(
    components: list[Component],
    needs: Mapping[str, Mapping[str, str]],
    launchers: Mapping[str, Launcher],
    external: ExternalCheck,
) -> dict[str, Any]:
    """Run ``components`` (one workflow's) by their needs; returns each one's result or
    raises ``ComponentsFailed`` naming every failed component with its error."""
    shared = readiness.get()
    by_name = {c.name: c for c in components}
    order = topological_order({n: [d for d in needs[n] if d in by_name] for n in by_name})
    submitted: dict[str, asyncio.Future[PrefectFuture | None]] = {
        n: asyncio.get_running_loop().create_future() for n in order
    }
    futures: dict[str, PrefectFuture] = {}
    results: dict[str, Any] = {}
    failures: dict[str, str] = {}
    checked: dict[str, asyncio.Task[bool]] = {}

    def external_met(name: str) -> Awaitable[bool]:
        if shared is not None and shared.covers(name):
            return shared.wait(name)
        if name not in checked:  # one check per prerequisite, however many need it
            checked[name] = asyncio.ensure_future(external(name))
        return checked[name]

    async def launch(component: Component) -> None:
        name = component.name
        board.plan(name, component.workflow)
        local = [d for d in needs[name] if d in by_name]
        outside = [d for d in needs[name] if d not in by_name]
        upstream = [await submitted[d] for d in local]
        unmet = [
            d
            for d, ok in zip(outside, await _all(external_met(d) for d in outside), strict=True)
            if not ok
        ]
        if unmet or any(f is None for f in upstream):
            reason = f"needs not met: {', '.join(unmet)}" if unmet else "a need did not run"
            board.skip(name, component.workflow, reason)
            submitted[name].set_result(None)
            _finish(shared, name, False)
            return
        future = launchers[component.kind](component, futures, [f for f in upstream if f])
        futures[name] = future
        submitted[name].set_result(future)
        await asyncio.to_thread(future.wait)
        state = future.state
        if state.is_completed():
            results[name] = future.result()
        elif state.is_failed() or state.is_crashed():
            failures[name] = _error_of(future)
            # A gate out of retries was last recorded as waiting: it failed.
            board.fail(name, component.workflow, failures[name][:500])
        else:  # NotReady: a local need failed
            board.skip(name, component.workflow, f"not run: {state.message or state.name}")
        _finish(shared, name, name in results)

    await asyncio.gather(*(launch(by_name[n]) for n in order))
    if failures:
        raise ComponentsFailed(failures)
    not_run = [n for n in order if n not in results]
    if not_run:
        raise ComponentsFailed({n: board.runs[n].detail or "not run" for n in not_run})
    return results


async def _all(waits) -> list[bool]:
    return list(await asyncio.gather(*waits))


def _finish(shared: Readiness | None, name: str, ok: bool) -> None:
    if shared is not None and shared.covers(name):
        shared.finish(name, ok)


def _error_of(future: PrefectFuture) -> str:
    try:
        future.result()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "failed"
