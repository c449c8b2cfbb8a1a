"""Awaiting Prefect task futures from a flow's event loop without holding a thread.

``asyncio.to_thread(future.wait)`` parks a thread of asyncio's default pool per waiter
(min(32, cores + 4) threads: 6 on 2 cores), so with more waiters than threads a finished
task was noticed seconds late. A done callback wakes the loop the moment the task ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from prefect.futures import PrefectFuture
from prefect.states import State


async def settled(future: PrefectFuture) -> State:
    """The task's final state, as soon as it has one."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def wake(_: PrefectFuture) -> None:
        # A loop closed first (its flow was cancelled) has nobody waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, done)

    future.add_done_callback(wake)
    await done
    future.wait()  # already done: records the final state without blocking
    return future.state


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


async def result_of(future: PrefectFuture) -> Any:
    """The task's result once it is done; raises its exception if it failed."""
    await settled(future)
    return future.result()
