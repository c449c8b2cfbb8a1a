"""Services: the cloud load balancer of type LoadBalancer, and Endpoints for selectors.

The API server already allocates cluster IPs and node ports (see defaults.py). Here a
LoadBalancer Service gets an NLB-style hostname after the latency "load_balancer", unless the
fault "lb-never-provisioned" strikes "<namespace>/<name>"; a Service with a selector gets an
Endpoints object listing its pods (Ready ones as addresses, others as notReadyAddresses).
EndpointSlices are not maintained.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sandbox.kube.faults import FaultLatch
from sandbox.kube.objects import (
    REGION,
    Key,
    deep,
    delete_quietly,
    is_ready,
    is_terminal,
    key_of,
    labels,
    stable_hex,
    uid,
)
from sandbox.kube.reconciler import Context, Reconciler
from sandbox.kube.store import Event

RECHECK_SECONDS = 0.5  # a struck service is looked at again, in case the fault is cleared
HEADLESS_LABEL = "service.kubernetes.io/headless"


def load_balancer_hostname(service: dict[str, Any]) -> str:
    """A stable NLB-style DNS name (an AWS load balancer name is at most 32 characters)."""
    name = "a" + stable_hex(uid(service), length=31)
    return f"{name}-{stable_hex('lb', uid(service), length=16)}.elb.{REGION}.amazonaws.com"


def _target_port(service_port: dict[str, Any], pods: list[dict[str, Any]]) -> int | None:
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    for pod in pods:
        for container in pod["spec"].get("containers") or []:
            for port in container.get("ports") or []:
                if port.get("name") == target:
                    return int(port["containerPort"])
    return None


def _address(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "ip": pod["status"]["podIP"],
        "nodeName": pod["spec"].get("nodeName", ""),
        "targetRef": {
            "kind": "Pod",
            "name": pod["metadata"]["name"],
            "namespace": pod["metadata"]["namespace"],
            "uid": uid(pod),
        },
    }


class Services(Reconciler):
    name = "services"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._lb_requested: dict[str, float] = {}  # service uid -> when it became a LoadBalancer
        self._no_lb = FaultLatch(ctx.settings.faults, "lb-never-provisioned")

    def resume(self) -> Iterable[Key]:
        return self._all_keys(self.kinds.service)

    def keys_for(self, event: Event) -> Iterable[Key]:
        if event.resource == self.kinds.service:
            if event.type == "DELETED":
                self._lb_requested.pop(uid(event.obj), None)
                self._no_lb.forget(uid(event.obj))
            return [key_of(event.obj)]
        if event.resource == self.kinds.pod:
            namespace = event.obj["metadata"]["namespace"]
            services, _ = self.store.list(self.kinds.service, namespace)
            return [key_of(s) for s in services if (s.get("spec") or {}).get("selector")]
        return ()

    def reconcile(self, key: Key) -> float | None:
        service = self.store.get(self.kinds.service, *key)
        if service is None:
            # like the endpoints controller: a Service's Endpoints go with it
            if self.store.get(self.kinds.endpoints, *key) is not None:
                delete_quietly(self.store, self.kinds.endpoints, *key)
            return None
        if (service.get("spec") or {}).get("selector"):
            self._sync_endpoints(service)
        return self._sync_load_balancer(service)

    def _sync_load_balancer(self, service: dict[str, Any]) -> float | None:
        spec = service.get("spec") or {}
        status = deep(service.get("status") or {})
        ingress = (status.get("loadBalancer") or {}).get("ingress")
        if spec.get("type") != "LoadBalancer":
            self._lb_requested.pop(uid(service), None)
            if ingress:
                status["loadBalancer"] = {}
                self.store.set_status(self.kinds.service, *key_of(service), status)
            return None
        if ingress:
            return None
        requested = self._lb_requested.setdefault(uid(service), time.time())
        left = self.ctx.settings.latency.seconds("load_balancer") - (time.time() - requested)
        if left > 0:
            return left
        namespace, name = key_of(service)
        if self._no_lb.struck(uid(service), f"{namespace}/{name}"):
            return RECHECK_SECONDS
        status["loadBalancer"] = {"ingress": [{"hostname": load_balancer_hostname(service)}]}
        self.store.set_status(self.kinds.service, namespace, name, status)
        return None

    def _sync_endpoints(self, service: dict[str, Any]) -> None:
        namespace, name = key_of(service)
        selector = service["spec"]["selector"]
        pods, _ = self.store.list(self.kinds.pod, namespace)
        members = [
            p
            for p in pods
            if not is_terminal(p)
            and (p.get("status") or {}).get("podIP")
            and selector.items() <= labels(p).items()
        ]
        ready = sorted((_address(p) for p in members if is_ready(p)), key=lambda a: a["ip"])
        not_ready = sorted((_address(p) for p in members if not is_ready(p)), key=lambda a: a["ip"])
        ports = []
        for port in service["spec"].get("ports") or []:
            target = _target_port(port, members)
            if target is not None:
                item = {"port": target, "protocol": port.get("protocol", "TCP")}
                if port.get("name"):
                    item["name"] = port["name"]
                ports.append(item)
        subset: dict[str, Any] = {}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        endpoint_labels = dict(labels(service))
        if service["spec"].get("clusterIP") == "None":
            endpoint_labels[HEADLESS_LABEL] = ""
        endpoints: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": namespace, "labels": endpoint_labels},
        }
        if subset and ports:
            endpoints["subsets"] = [{**subset, "ports": ports}]
        current = self.store.get(self.kinds.endpoints, namespace, name)
        if current is None:
            self.store.create(self.kinds.endpoints, endpoints)
        elif (
            current.get("subsets") != endpoints.get("subsets") or labels(current) != endpoint_labels
        ):
            updated = deep(current)
            updated["metadata"]["labels"] = endpoint_labels
            updated.pop("subsets", None)
            if "subsets" in endpoints:
                updated["subsets"] = endpoints["subsets"]
            self.store.replace(self.kinds.endpoints, updated)
