"""Polling with a deadline, for the few waits no API offers a waiter for."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


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
