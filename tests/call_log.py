"""Which AWS operations a run called: a boto3 ``before-call`` hook shared by the tiers."""

from __future__ import annotations

from typing import Any

READS = ("Describe", "List", "Get", "Head")


class CallLog:
    """A ``before-call`` hook recording the name of every operation a client calls."""

    def __init__(self) -> None:
        self.operations: list[str] = []

    def __call__(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)

    def mutating(self) -> list[str]:
        return [name for name in self.operations if not name.startswith(READS)]
