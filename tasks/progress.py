"""What each component is doing, for the live display, the report and Prefect events.

Component tasks wrap their work in ``track``; listeners (the CLI's progress display) see
every change. The record is per process: ``platformctl up`` runs its flows in-process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from prefect.events import emit_event


@dataclass
class ComponentRun:
    name: str
    workflow: str
    status: str = "pending"  # pending | running | waiting | completed | failed | skipped
    submitted_at: float | None = None  # when its needs were met and its task submitted
    started_at: float | None = None
    finished_at: float | None = None
    detail: str = ""

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return round((self.finished_at or time.time()) - self.started_at, 3)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("submitted_at", "started_at", "finished_at"):
            if data[key] is not None:
                data[key] = datetime.fromtimestamp(data[key], UTC).isoformat()
        data["duration_s"] = self.duration_s
        return data


class Board:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runs: dict[str, ComponentRun] = {}
        self._listeners: list[Callable[[ComponentRun], None]] = []

    def listen(self, listener: Callable[[ComponentRun], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def reset(self) -> None:
        with self._lock:
            self.runs.clear()
            self._listeners.clear()

    def plan(self, name: str, workflow: str) -> None:
        self._update(name, workflow, status="pending")

    def submitted(self, name: str, workflow: str) -> None:
        self._update(name, workflow, submitted_at=time.time())

    def _update(self, name: str, workflow: str, **changes: Any) -> ComponentRun:
        with self._lock:
            run = self.runs.setdefault(name, ComponentRun(name, workflow))
            for key, value in changes.items():
                setattr(run, key, value)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(run)
        return run

    def skip(self, name: str, workflow: str, detail: str) -> None:
        self._update(name, workflow, status="skipped", detail=detail)

    def note(self, name: str, workflow: str, detail: str) -> None:
        self._update(name, workflow, detail=detail)

    def fail(self, name: str, workflow: str, detail: str) -> None:
        self._update(name, workflow, status="failed", finished_at=time.time(), detail=detail)

    @contextmanager
    def track(
        self, name: str, workflow: str, waiting_on: tuple[type[BaseException], ...] = ()
    ) -> Iterator[None]:
        """Record a run of the component; an exception in ``waiting_on`` means "not yet"
        (a gate's attempt that will be retried), anything else means failed."""
        with self._lock:
            current = self.runs.get(name)
            resumed = current is not None and current.status == "waiting"
        if resumed:
            self._update(name, workflow, status="running")
        else:
            self._update(name, workflow, status="running", started_at=time.time(), detail="")
            _event(name, workflow, "started")
        try:
            yield
        except waiting_on as exc:
            self._update(name, workflow, status="waiting", detail=str(exc)[:500])
            raise
        except BaseException as exc:
            self._update(
                name, workflow, status="failed", finished_at=time.time(), detail=str(exc)[:500]
            )
            _event(name, workflow, "failed", str(exc)[:500])
            raise
        self._update(name, workflow, status="completed", finished_at=time.time())
        _event(name, workflow, "completed")


def _event(name: str, workflow: str, what: str, detail: str = "") -> None:
    emit_event(
        event=f"platform.component.{what}",
        resource={
            "prefect.resource.id": f"platform.component.{name}",
            "prefect.resource.name": name,
            "platform.workflow": workflow,
        },
        payload={"detail": detail} if detail else None,
    )


board = Board()
