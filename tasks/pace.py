"""Run pacing: one time scale for every wait, poll interval and budget of a run.

``time_scale`` is wall seconds per guide minute: 60 against real AWS, and smaller on a
sandbox whose simulated control planes run faster by the same factor (e.g. 0.2). Every
duration the spec or the guide states in real seconds goes through ``seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
REAL_TIME = 60.0
MIN_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Pace:
    time_scale: float = REAL_TIME
    # Budgets (timeouts) never shrink below this: a fast sandbox still has real overheads.
    min_budget: float = 30.0

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")

    def seconds(self, real_seconds: float) -> float:
        return real_seconds * self.time_scale / REAL_TIME

    def budget(self, real_seconds: float) -> float:
        return max(self.min_budget, self.seconds(real_seconds))

    def poll(self, real_seconds: float) -> float:
        return max(MIN_POLL_SECONDS, self.seconds(real_seconds))

    def waiter_config(self, real_delay: float, real_timeout: float) -> dict[str, float | int]:
        """A boto3 ``WaiterConfig`` with the delay and the budget scaled."""
        delay = self.poll(real_delay)
        return {"Delay": delay, "MaxAttempts": max(1, int(self.budget(real_timeout) / delay) + 1)}


class WaitTimeout(TimeoutError):
    pass


def poll_until(check: Callable[[], T | None], timeout: float, interval: float, what: str) -> T:
    """Call ``check`` every ``interval`` seconds until it returns something other than None;
    ``WaitTimeout`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"{what}: not done after {timeout:.1f}s")
        time.sleep(interval)
