"""Prefect global concurrency limits that keep the runs of one environment apart.

- ``platform-<environment>``, one slot: held for its whole run by every flow that changes
  the environment (``bootstrap_platform``, a workflow started alone, ``teardown_platform``,
  a remediation). A second one waits, and says so in its log; the UI's Concurrency page
  shows the slot taken. Read-only re-validation never takes it.
- ``helm-<environment>``, ``runtime.helm_concurrency`` slots: each helm install, upgrade,
  rollback or uninstall on the environment's cluster, whichever process runs it.

Slots are leases that the holder renews. A run that is killed keeps its slots until the
lease expires (60 s, Prefect's minimum), after which a served Prefect reclaims them. A
temporary Prefect server (``platformctl up`` without ``PREFECT_API_URL``) does not reclaim
leases, so ``platformctl unlock`` releases them, the way ``terraform force-unlock`` does.
A run that holds the environment's lock resets its helm slots: no other run of the
environment can be using them, so any still counted belong to a run that is gone.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.asyncio import AcquireConcurrencySlotTimeoutError, concurrency
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.logging import get_logger, get_run_logger

LEASE_SECONDS = 60.0  # the shortest lease Prefect grants
RACE_SECONDS = 1.0  # between reading a slot free and taking it

# The locks the current run (and the subflows it calls) already holds.
held: ContextVar[frozenset[str]] = ContextVar("platform_locks_held", default=frozenset())


class EnvironmentBusy(TimeoutError):
    """Another run held the environment for longer than this run would wait."""


class HelmSlotTimeout(TimeoutError):
    """No helm slot of the environment came free within the component's budget."""


def lock_name(environment: str) -> str:
    return f"platform-{environment}"


def helm_slots_name(environment: str) -> str:
    return f"helm-{environment}"


async def ensure_limits(environment: str, helm_concurrency: int) -> None:
    """Create both limits of the environment, or set the helm bound to the spec's."""
    async with get_client() as client:
        for name, slots in (
            (lock_name(environment), 1),
            (helm_slots_name(environment), helm_concurrency),
        ):
            try:
                await client.upsert_global_concurrency_limit_by_name(name, slots)
            except ObjectAlreadyExists:
                # Prefect's upsert reads then creates: a run starting at the same moment
                # created it in between, and setting it again is an update.
                await client.upsert_global_concurrency_limit_by_name(name, slots)


def _holder() -> ConcurrencyLeaseHolder | None:
    """The task or flow run taking a slot, recorded with its lease."""
    task_run = TaskRunContext.get()
    if task_run is not None:
        return ConcurrencyLeaseHolder(type="task_run", id=task_run.task_run.id)
    flow_run = FlowRunContext.get()
    if flow_run is not None and flow_run.flow_run is not None:
        return ConcurrencyLeaseHolder(type="flow_run", id=UUID(str(flow_run.flow_run.id)))
    return None


def _slot(name: str, **options: Any):
    return concurrency(
        name,
        occupy=1,
        lease_duration=LEASE_SECONDS,
        strict=True,
        holder=_holder(),
        raise_on_lease_renewal_failure=False,
        **options,
    )


async def _take(
    stack: AsyncExitStack, name: str, wait_seconds: float, on_wait: Callable[[], None]
) -> bool:
    """Take a slot of ``name`` into ``stack``; True when one was free at once. When none is,
    ``on_wait`` is told and the wait lasts at most ``wait_seconds`` (TimeoutError past
    it, or at once when ``wait_seconds`` is 0)."""
    async with get_client() as client:
        limit = await client.read_global_concurrency_limit_by_name(name)
    # Free a moment ago: a short try covers a run that took it in between, and that run
    # is then waited for like any other.
    if limit.active_slots < limit.limit and await _enter(stack, name, RACE_SECONDS):
        return True
    if wait_seconds <= 0:
        raise TimeoutError(name)
    on_wait()
    if not await _enter(stack, name, wait_seconds):
        raise TimeoutError(name)
    return False


async def _enter(stack: AsyncExitStack, name: str, timeout_seconds: float) -> bool:
    """Take a slot into ``stack`` within ``timeout_seconds``; False when none came free."""
    try:
        await stack.enter_async_context(_slot(name, timeout_seconds=timeout_seconds))
    except AcquireConcurrencySlotTimeoutError:
        return False
    return True


def _logger():
    try:
        return get_run_logger()
    except Exception:  # outside a run (tests, scripts)
        return get_logger("platform.locks")


@asynccontextmanager
async def environment_lock(
    environment: str, helm_concurrency: int, wait_seconds: float, skip_if_busy: bool = False
) -> AsyncIterator[bool]:
    """Hold the environment for the body; yields True when held. A run that holds it
    already (a subflow of ``bootstrap_platform``) passes through. With ``skip_if_busy``, a
    busy environment yields False at once instead of waiting."""
    name = lock_name(environment)
    if name in held.get():
        yield True
        return
    await ensure_limits(environment, helm_concurrency)
    async with AsyncExitStack() as stack:
        if not await _hold(stack, environment, wait_seconds, skip_if_busy):
            yield False
            return
        await _reset(helm_slots_name(environment))
        token = held.set(held.get() | {name})
        try:
            yield True
        finally:
            held.reset(token)


async def _hold(
    stack: AsyncExitStack, environment: str, wait_seconds: float, skip_if_busy: bool
) -> bool:
    """Take the environment's lock into ``stack``; False when busy and ``skip_if_busy``."""
    name, logger, began = lock_name(environment), _logger(), time.monotonic()

    def waiting() -> None:
        logger.warning(
            "waiting for environment %s: another run holds its lock %s (see Concurrency in "
            "the UI); waiting up to %.0fs",
            environment,
            name,
            wait_seconds,
        )

    try:
        at_once = await _take(stack, name, 0 if skip_if_busy else wait_seconds, waiting)
    except TimeoutError:
        if skip_if_busy:
            logger.warning("environment %s is busy (%s is taken): skipped", environment, name)
            return False
        raise EnvironmentBusy(
            f"environment {environment}: its lock {name} is still held after "
            f"{wait_seconds:.0f}s; a run that was killed releases it when its lease expires, "
            f"or now with: platformctl unlock --env {environment}"
        ) from None
    if not at_once:
        logger.info("took %s after %.1fs", name, time.monotonic() - began)
    return True


@asynccontextmanager
async def helm_slot(
    environment: str, wait_seconds: float, on_wait: Callable[[], None] = lambda: None
) -> AsyncIterator[None]:
    """One of the environment's helm slots for the body; ``on_wait`` when none is free."""
    name = helm_slots_name(environment)
    async with AsyncExitStack() as stack:
        try:
            await _take(stack, name, wait_seconds, on_wait)
        except TimeoutError:
            raise HelmSlotTimeout(
                f"no helm slot ({name}) came free within {wait_seconds:.0f}s"
            ) from None
        yield


async def _reset(name: str) -> None:
    async with get_client() as client:
        await client.update_global_concurrency_limit(
            name, GlobalConcurrencyLimitUpdate(active_slots=0)
        )


async def unlock(environment: str) -> dict[str, int]:
    """Release every slot of the environment's limits (what a killed run left taken);
    returns how many each had."""
    released = {}
    async with get_client() as client:
        for name in (lock_name(environment), helm_slots_name(environment)):
            try:
                limit = await client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                continue
            released[name] = limit.active_slots
            await _reset(name)
    return released
