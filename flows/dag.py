"""Run components as Prefect tasks, each started the moment its own needs are met.

Each component waits for its needs' outcomes in a ``Readiness`` record, then its task is
submitted (with its needs' futures as ``wait_for``, which draws the edges in the UI).
Inside ``bootstrap_platform`` every workflow flow runs in one event loop and shares one
record, so a component waits for the other workflow's component itself (not for that
whole workflow, nor a phase barrier). A workflow started alone has its own record and
checks needs in other workflows through their real readiness gates.

Every component ends with an outcome, whatever happens (its task fails or times out, a
submission raises, the flow is cancelled): a component whose need did not complete is
not run, and shows as a Cancelled task run with the reason. So a run always ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from prefect.context import SyncClientContext
from prefect.futures import PrefectFuture
from prefect.states import Cancelled, State
from prefect.task_engine import TaskRunTimeoutError

from blueprint.catalogue import Component
from flows.futures import settled
from flows.launchers import component_tags
from tasks.progress import board

# Submits a component's task, given what its needs returned and their futures.
Launch = Callable[[Component, Mapping[str, Any], list[PrefectFuture]], PrefectFuture]
# Checks a need outside the running workflows (a workflow started alone): True when met.
ExternalCheck = Callable[[str], Awaitable[bool]]


class ComponentsFailed(RuntimeError):
    def __init__(self, failures: dict[str, str]):
        self.failures = failures
        lines = [f"{name}: {reason}" for name, reason in failures.items()]
        super().__init__("components failed:\n" + "\n".join(lines))


class Readiness:
    """How each component of a run ended (True when it completed), and which workflows
    have begun. Created in the flow's event loop; dependants await it there."""

    def __init__(self, components: list[str]):
        loop = asyncio.get_running_loop()
        self._outcomes: dict[str, asyncio.Future[bool]] = {
            name: loop.create_future() for name in components
        }
        self._begun: dict[str, asyncio.Event] = {}

    def begin(self, workflow: str) -> None:
        self._begun.setdefault(workflow, asyncio.Event()).set()

    async def begun(self, workflow: str) -> None:
        await self._begun.setdefault(workflow, asyncio.Event()).wait()

    def covers(self, name: str) -> bool:
        return name in self._outcomes

    def finish(self, name: str, ok: bool) -> None:
        """Record the outcome; the first one counts."""
        outcome = self._outcomes[name]
        if not outcome.done():
            outcome.set_result(ok)

    def abandon(self, names: list[str]) -> None:
        """Components that will not run (their workflow stopped): not met."""
        for name in names:
            if self.covers(name):
                self.finish(name, False)

    async def wait(self, name: str) -> bool:
        return await asyncio.shield(self._outcomes[name])


readiness: ContextVar[Readiness | None] = ContextVar("platform_readiness", default=None)


@task(name="not-run", cache_policy=NONE)
def not_run(component: str, reason: str) -> State:
    """Leaves a trace of a component that did not run: a Cancelled task run, with why."""
    return Cancelled(message=f"{component} not run: {reason}")


class ComponentRun:
    """One workflow's components, each run when its needs are met."""

    def __init__(
        self,
        components: list[Component],
        needs: Mapping[str, Mapping[str, str]],
        launch: Launch,
        external: ExternalCheck,
        record: Readiness,
    ):
        self.components = components
        self.needs = needs
        self.launch = launch
        self.external = external
        self.record = record
        self.futures: dict[str, PrefectFuture] = {}
        self.results: dict[str, Any] = {}
        self.failures: dict[str, str] = {}
        self.not_run: dict[str, str] = {}
        self._checks: dict[str, asyncio.Task[bool]] = {}

    async def run(self) -> dict[str, Any]:
        """Every component's result; ``ComponentsFailed`` names each one that failed or
        did not run."""
        try:
            await asyncio.gather(*(self._component(c) for c in self.components))
        finally:
            self.record.abandon([c.name for c in self.components])
            for check in self._checks.values():
                check.cancel()
        if self.failures or self.not_run:
            raise ComponentsFailed({**self.failures, **self.not_run})
        return self.results

    async def _component(self, component: Component) -> None:
        name, workflow = component.name, component.workflow
        board.plan(name, workflow)
        ok = False
        try:
            unmet = await self._unmet(component)
            if unmet:
                await self._skip(component, f"needs not met: {', '.join(unmet)}")
                return
            upstream = [self.futures[n] for n in self.needs[name] if n in self.futures]
            board.submitted(name, workflow)
            future = self.launch(component, self.futures, upstream)
            self.futures[name] = future
            ok = self._record_outcome(component, future, await settled(future))
        except Exception as exc:  # a submission or the API failed: so did the component
            self.failures[name] = f"{type(exc).__name__}: {exc}"
            board.fail(name, workflow, self.failures[name][:500])
        finally:
            self.record.finish(name, ok)

    async def _unmet(self, component: Component) -> list[str]:
        needs = list(self.needs[component.name])
        met = await asyncio.gather(*(self._met(n) for n in needs))
        return [n for n, ok in zip(needs, met, strict=True) if not ok]

    def _met(self, need: str) -> Awaitable[bool]:
        if self.record.covers(need):
            return self.record.wait(need)
        if need not in self._checks:  # one check per prerequisite, however many need it
            self._checks[need] = asyncio.ensure_future(self.external(need))
        return asyncio.shield(self._checks[need])

    async def _skip(self, component: Component, reason: str) -> None:
        self.not_run[component.name] = reason
        board.skip(component.name, component.workflow, reason)
        trace = not_run.with_options(task_run_name=component.name, tags=component_tags(component))
        await settled(trace.submit(component.name, reason))

    def _record_outcome(self, component: Component, future: PrefectFuture, state: State) -> bool:
        name, workflow = component.name, component.workflow
        if state.is_completed():
            self.results[name] = future.result()
            return True
        if state.is_failed() or state.is_crashed():
            self.failures[name] = error_text(future)
            # A gate out of retries was last recorded as waiting: it failed.
            board.fail(name, workflow, self.failures[name][:500])
        else:
            self.not_run[name] = f"not run: {state.message or state.name}"
            board.skip(name, workflow, self.not_run[name])
        return False


async def run_components(
    components: list[Component],
    needs: Mapping[str, Mapping[str, str]],
    launch: Launch,
    external: ExternalCheck,
) -> dict[str, Any]:
    """Run ``components`` (one workflow's) by their needs, within the run's shared
    readiness record when there is one; returns each one's result or raises
    ``ComponentsFailed`` naming every component that failed or did not run."""
    record = readiness.get() or Readiness([c.name for c in components])
    # Task runs started from here share one API client: Prefect otherwise makes a client
    # (and loads a CA bundle, about 40 ms) for every task run it starts.
    with SyncClientContext.get_or_create():
        return await ComponentRun(components, needs, launch, external, record).run()


def error_text(future: PrefectFuture) -> str:
    """What a failed task raised, in a line a person can act on."""
    try:
        future.result()
    except TaskRunTimeoutError as exc:
        return f"timed out: {exc}"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "failed"
