"""Readiness gates: a check that either passes or raises ``GateNotReady``.

The gate task retries the check every ``retry_interval`` until ``timeout`` (the spec's
budget, paced by the run's time scale), so Prefect shows each attempt as a retry.
"""

from __future__ import annotations

import math
from typing import Any

from kubernetes import client as k8s

from blueprint.spec import Gate
from blueprint.units import duration_seconds
from tasks.pace import Pace


class GateNotReady(RuntimeError):
    pass


def retry_policy(gate: Gate, pace: Pace) -> dict[str, Any]:
    """Prefect task options that make a gate spend its budget: one attempt per retry
    interval until the timeout (each attempt is one quick check, so no task timeout)."""
    interval = pace.poll(float(duration_seconds(gate.retry_interval)))
    timeout = pace.budget(float(duration_seconds(gate.timeout)))
    return {"retries": max(0, math.ceil(timeout / interval)), "retry_delay_seconds": interval}


def cluster_api_accessible(api: k8s.ApiClient) -> dict[str, Any]:
    """The API server answers /version and lists namespaces."""
    try:
        version = k8s.VersionApi(api).get_code()
        k8s.CoreV1Api(api).list_namespace(limit=1)
    except Exception as exc:
        raise GateNotReady(f"cluster API not accessible: {exc}") from exc
    return {"git_version": version.git_version}
