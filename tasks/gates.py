"""Readiness gates: a check that passes, raises ``GateNotReady`` (not yet) or fails.

The gate task retries the check every ``retry_interval`` until ``timeout`` (the spec's
budget, paced by the run's time scale), so Prefect shows each attempt as a retry. Only
"not ready yet" is retried: access refused (401, 403) or anything else unexpected fails at
once, with its cause, instead of burning the whole budget.
"""

from __future__ import annotations

import json
import math
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from blueprint.pace import Pace
from blueprint.spec import Gate
from blueprint.units import duration_seconds
from tasks.retries import is_transient, raised

# One attempt: a few API requests, each bounded by its own request timeout.
ATTEMPT_SECONDS = 150.0
REFUSED = (401, 403)


class GateNotReady(RuntimeError):
    """Not ready yet: another attempt, after the retry interval, may pass."""


class GateRefused(RuntimeError):
    """The cluster refused the check (credentials, authorization): waiting will not help."""


def retry_if_not_ready(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn`` of a gate: retry "not ready yet" only."""
    return isinstance(raised(state), GateNotReady)


def retry_policy(gate: Gate, pace: Pace) -> dict[str, Any]:
    """Prefect task options that make a gate spend its budget: one attempt per retry
    interval until the timeout, retried only while not ready."""
    interval = pace.poll(float(duration_seconds(gate.retry_interval)))
    timeout = pace.budget(float(duration_seconds(gate.timeout)))
    return {
        "retries": max(0, math.ceil(timeout / interval)),
        "retry_delay_seconds": interval,
        "retry_condition_fn": retry_if_not_ready,
    }


def not_ready_unless_refused(what: str, error: Exception) -> Exception:
    """The error a gate raises for a failed request: refused access is permanent, a
    transient error (no answer, 5xx) means not ready yet, anything else is permanent."""
    if isinstance(error, ApiException) and error.status in REFUSED:
        return GateRefused(f"{what}: access refused ({error.status} {error.reason})")
    if is_transient(error):
        return GateNotReady(f"{what}: {type(error).__name__}: {error}")
    return error


def cluster_api_accessible(api: k8s.ApiClient) -> dict[str, Any]:
    """The API server answers /version and lists namespaces."""
    try:
        version = k8s.VersionApi(api).get_code()
        k8s.CoreV1Api(api).list_namespace(limit=1)
    except Exception as exc:
        raise not_ready_unless_refused("cluster API not accessible", exc) from exc
    return {"git_version": version.git_version}


def load_balancer_provisioned(api: k8s.ApiClient, namespace: str, release: str) -> dict[str, Any]:
    """The release's LoadBalancer Service has an address (hostname or IP)."""
    services = (
        k8s.CoreV1Api(api)
        .list_namespaced_service(namespace, label_selector=f"app.kubernetes.io/instance={release}")
        .items
    )
    balancers = [s for s in services if s.spec.type == "LoadBalancer"]
    if not balancers:
        raise GateNotReady(f"no LoadBalancer Service of release {release} in {namespace}")
    addresses = {}
    for service in balancers:
        ingress = (service.status.load_balancer.ingress or []) if service.status else []
        address = next((i.hostname or i.ip for i in ingress if i.hostname or i.ip), None)
        if not address:
            raise GateNotReady(f"Service {namespace}/{service.metadata.name} has no address yet")
        addresses[service.metadata.name] = address
    return {"load_balancers": addresses}


PROMETHEUS_PORT = 9090


def prometheus_service(api: k8s.ApiClient, namespace: str, release: str) -> str:
    """The Service in front of the release's Prometheus (the one serving port 9090)."""
    services = (
        k8s.CoreV1Api(api)
        .list_namespaced_service(namespace, label_selector=f"release={release}")
        .items
    )
    for service in services:
        if service.spec.cluster_ip == "None":  # headless (prometheus-operated): no proxy
            continue
        if any(p.port == PROMETHEUS_PORT for p in service.spec.ports or []):
            return service.metadata.name
    raise GateNotReady(
        f"no Prometheus Service (port {PROMETHEUS_PORT}) of {release} in {namespace}"
    )


def prometheus_targets_discovered(
    api: k8s.ApiClient, namespace: str, release: str
) -> dict[str, Any]:
    """Prometheus, asked through the API server's service proxy, has active targets."""
    service = prometheus_service(api, namespace, release)
    try:
        # /api/v1/targets answers active and dropped targets; only the active count.
        response = k8s.CoreV1Api(api).connect_get_namespaced_service_proxy_with_path(
            f"{service}:{PROMETHEUS_PORT}", namespace, "api/v1/targets", _preload_content=False
        )
        data = json.loads(response.data)
    except ApiException as exc:
        if exc.status in REFUSED:
            raise not_ready_unless_refused("Prometheus API", exc) from exc
        # 503 from the service proxy while Prometheus starts: not ready yet
        raise GateNotReady(f"Prometheus API not answering: {exc.status} {exc.reason}") from exc
    except ValueError as exc:
        raise GateNotReady(f"Prometheus API answered no JSON: {exc}") from exc
    active = data.get("data", {}).get("activeTargets", [])
    if not active:
        raise GateNotReady("Prometheus has discovered no targets yet")
    up = sum(1 for t in active if t.get("health") == "up")
    return {"active_targets": len(active), "up": up}
