"""Run pacing: one time scale for every wait, poll interval and budget of a run.

``time_scale`` is wall seconds per guide minute: 60 against real AWS, and smaller on a
sandbox whose simulated control planes run faster by the same factor (e.g. 0.2). Every
duration the spec or the guide states in real seconds goes through ``seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass

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
