"""Readiness gates: a check that either passes or raises ``GateNotReady``.

The gate task retries the check every ``retry_interval`` until ``timeout`` (the spec's
budget, paced by the run's time scale), so Prefect shows each attempt as a retry.
"""

from __future__ import annotations

import json
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
    except Exception as exc:
        raise GateNotReady(f"Prometheus API not answering: {exc}") from exc
    active = data.get("data", {}).get("activeTargets", [])
    if not active:
        raise GateNotReady("Prometheus has discovered no targets yet")
    up = sum(1 for t in active if t.get("health") == "up")
    return {"active_targets": len(active), "up": up}
