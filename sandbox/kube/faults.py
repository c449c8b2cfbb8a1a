"""Faults that strike an object for good: a pod that never gets Ready, a service with no LB.

The fault is checked once per object, when the object would otherwise make its transition.
A struck object stays struck while the fault that struck it is in force: a counted fault
strikes that many objects for their whole life; a standing fault (no count) releases its
objects as soon as it is cleared, so a test or user can heal the sandbox.
"""

from __future__ import annotations

import fnmatch

from sandbox.settings import Fault, FaultBook


class FaultLatch:
    def __init__(self, faults: FaultBook, name: str) -> None:
        self._faults = faults
        self._name = name
        self._struck: dict[str, Fault] = {}  # object uid -> the fault that struck it

    def _matching(self, subjects: tuple[str, ...]) -> Fault | None:
        # mirrors FaultBook's own matching: the first fault of the name whose target matches
        for fault in self._faults.list():
            if fault.name == self._name and any(
                fnmatch.fnmatchcase(s, fault.target) for s in subjects
            ):
                return fault
        return None

    def struck(self, uid: str, *subjects: str) -> bool:
        """Whether the object is (now or still) struck by the fault."""
        fault = self._struck.get(uid)
        if fault is not None:
            in_force = any(f is fault for f in self._faults.list())
            used_up = fault.count == 0
            if in_force or used_up:
                return True
            del self._struck[uid]  # cleared: the object recovers
            return False
        fault = self._matching(subjects)
        if fault is None or not self._faults.fire(self._name, *subjects):
            return False
        self._struck[uid] = fault
        return True

    def forget(self, uid: str) -> None:
        self._struck.pop(uid, None)
