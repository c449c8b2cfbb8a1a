"""Flow run names people can tell apart in the UI: what, where and when.

``revalidate-production-20261203-0930``: a scheduled re-validation every 30 minutes makes 48
runs a day; the name says which slot each one was. The time is the run's scheduled start
(UTC), or now for a run started directly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from prefect.runtime import flow_run

STAMP = "%Y%m%d-%H%M%S"


def run_name(what: str) -> Callable[[], str]:
    """A ``flow_run_name`` callable: ``<what>-<environment>-<UTC time>``."""

    def name() -> str:
        environment = flow_run.parameters.get("environment", "")
        when = flow_run.scheduled_start_time
        stamp = when.astimezone(UTC) if isinstance(when, datetime) else datetime.now(UTC)
        return f"{what}-{environment}-{stamp.strftime(STAMP)}"

    return name
