"""Deletes that AWS refuses until something else has gone, retried within a budget.

On AWS a subnet, security group, internet gateway or VPC answers DependencyViolation while
network interfaces are still in it, and those of a deleted load balancer or endpoint take
minutes to go; a volume stays in use until its instance has let go of it. A fixed number of
retries is either too short on AWS or too long on a sandbox, so each such delete waits for
guide minutes scaled by the run's pace, and past them fails naming what still blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blueprint.pace import Pace
from tasks.aws.errors import AwsError, PermanentAwsError, aws_call
from tasks.polling import WaitTimeout, poll_until

# How long AWS may take to let go: a deleted load balancer's interfaces take minutes.
DRAIN_SECONDS = 20 * 60
POLL_SECONDS = 15
BLOCKED = frozenset(
    {"DependencyViolation", "InvalidIPAddress.InUse", "VolumeInUse", "ResourceInUse"}
)


def delete_when_free(
    pace: Pace, action: str, delete: Callable[[], Any], blockers: Callable[[], list[str]]
) -> None:
    """Call ``delete`` until AWS stops refusing it for a dependant; past the budget, a
    permanent error naming ``blockers()`` (e.g. the interfaces still in a subnet)."""
    refusal: list[AwsError] = []

    def attempt() -> bool | None:
        try:
            with aws_call(action):
                delete()
        except AwsError as exc:
            if exc.code not in BLOCKED:
                raise
            refusal[:] = [exc]
            return None
        return True

    budget = pace.budget(DRAIN_SECONDS)
    try:
        poll_until(attempt, budget, pace.poll(POLL_SECONDS), action)
    except WaitTimeout:
        still = ", ".join(blockers()) or "nothing AWS lists"
        last = refusal[0] if refusal else None
        raise PermanentAwsError(
            action,
            last.code if last else "Timeout",
            f"still refused after {budget:.1f}s ({last.aws_message if last else 'no answer'}); "
            f"still in the way: {still}",
        ) from None
