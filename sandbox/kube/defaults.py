"""Defaulting the real API server applies on write, for the kinds whose readers depend on it.

helm's --wait and kubectl read fields such as ``spec.replicas`` or ``spec.clusterIP`` that the
API server fills in; without them clients misbehave (helm dereferences ``spec.replicas``).
Only fields a default is documented for are set, and never over a value the client gave.
"""

from __future__ import annotations

import base64
import ipaddress
import random
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.kube.resources import ResourceType

# EKS's default service CIDR; the first address is the API server's own Service.
SERVICE_CIDR = ipaddress.ip_network("10.100.0.0/16")
# Like the real allocator, dynamic IPs come from above the low band kept for static requests
# (e.g. kube-dns asks for 10.100.0.10).
DYNAMIC_IP_OFFSET = 16 * 256
NODE_PORTS = range(30000, 32768)


class AllocationError(ValueError):
    """A requested cluster IP or node port is taken or out of range."""


class Allocator:
    """Hands out Service cluster IPs and node ports; callers pass in what is already in use."""

    def __init__(self, seed: int = 0):
        self._random = random.Random(seed)

    def cluster_ip(self, used: set[str]) -> str:
        hosts = SERVICE_CIDR.num_addresses - 2
        for _ in range(hosts):
            offset = self._random.randrange(DYNAMIC_IP_OFFSET, hosts)
            candidate = str(SERVICE_CIDR.network_address + offset)
            if candidate not in used:
                return candidate
        raise AllocationError("the service IP range is full")

    def node_port(self, used: set[int]) -> int:
        free = [p for p in NODE_PORTS if p not in used]
        if not free:
            raise AllocationError("the node port range is full")
        return self._random.choice(free)


def _setdefault_path(obj: dict, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        child = obj.get(part)
        if not isinstance(child, dict):
            child = obj[part] = {}
        obj = child
    if obj.get(leaf) is None:
        obj[leaf] = value


def _pull_policy(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    tag = name.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _container_defaults(container: dict) -> None:
    container.setdefault("imagePullPolicy", _pull_policy(container.get("image", "")))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")


def pod_spec_defaults(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            _container_defaults(container)


def _template_defaults(obj: dict) -> None:
    template = (obj.get("spec") or {}).get("template")
    if isinstance(template, dict):
        pod_spec_defaults(template.setdefault("spec", {}))


def qos_class(spec: dict) -> str:
    containers = spec.get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                return "Burstable"
    return "Guaranteed"


def _pod(obj: dict, old: dict | None) -> None:
    spec = obj.setdefault("spec", {})
    pod_spec_defaults(spec)
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", qos_class(spec))


def _deployment(obj: dict, old: dict | None) -> None:
    _setdefault_path(obj, "spec.replicas", 1)
    spec = obj["spec"]
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _template_defaults(obj)


def _replica_set(obj: dict, old: dict | None) -> None:
    _setdefault_path(obj, "spec.replicas", 1)
    _template_defaults(obj)


def _stateful_set(obj: dict, old: dict | None) -> None:
    _setdefault_path(obj, "spec.replicas", 1)
    spec = obj["spec"]
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault(
        "persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"}
    )
    _template_defaults(obj)


def _daemon_set(obj: dict, old: dict | None) -> None:
    spec = obj.setdefault("spec", {})
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _template_defaults(obj)


def _job(obj: dict, old: dict | None) -> None:
    spec = obj.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1  # a Job of neither runs one pod to completion
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if old is None and not spec.get("manualSelector"):
        # The API server generates the selector from the Job's uid, as kube-apiserver does.
        uid = obj["metadata"]["uid"]
        name = obj["metadata"]["name"]
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "job-name": name,
            }
        )
    elif old is not None:
        spec.setdefault("selector", (old.get("spec") or {}).get("selector"))
    _template_defaults(obj)


def _cron_job(obj: dict, old: dict | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict):
        _template_defaults(job_template)


def _namespace(obj: dict, old: dict | None) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")
    labels = obj["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]


def _secret(obj: dict, old: dict | None) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if string_data:
        data = obj.get("data") or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


def _pvc(obj: dict, old: dict | None) -> None:
    obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def _pv(obj: dict, old: dict | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def service_defaults(
    obj: dict,
    old: dict | None,
    allocator: Allocator,
    used_ips: Callable[[], set[str]],
    used_ports: Callable[[], set[int]],
) -> None:
    """Type, ports and the allocated cluster IP / node ports of a Service.

    On update, allocated values the client left out are carried over from the stored object,
    as the real API server does.
    """
    spec = obj.setdefault("spec", {})
    old_spec = (old or {}).get("spec") or {}
    kind = spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    obj.setdefault("status", {}).setdefault("loadBalancer", {})
    if kind == "ExternalName":
        return
    if not spec.get("clusterIP") and old_spec.get("clusterIP"):
        spec["clusterIP"] = old_spec["clusterIP"]
    requested = spec.get("clusterIP")
    if requested and requested != "None" and requested != old_spec.get("clusterIP"):
        if ipaddress.ip_address(requested) not in SERVICE_CIDR:
            raise AllocationError(f"spec.clusterIP: {requested} is not in {SERVICE_CIDR}")
        if requested in used_ips():
            raise AllocationError(
                f"spec.clusterIPs: failed to allocate IP {requested}: "
                "provided IP is already allocated"
            )
    if not requested:
        spec["clusterIP"] = allocator.cluster_ip(used_ips())
    spec["clusterIPs"] = [spec["clusterIP"]]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
        if kind == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        _node_ports(spec, old_spec, allocator, used_ports)


def _node_ports(
    spec: dict, old_spec: dict, allocator: Allocator, used_ports: Callable[[], set[int]]
) -> None:
    previous = {
        (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
        for p in old_spec.get("ports") or []
    }
    taken: set[int] | None = None
    for port in spec.get("ports") or []:
        key = (port.get("port"), port.get("protocol", "TCP"))
        if port.get("nodePort") is None and previous.get(key):
            port["nodePort"] = previous[key]
            continue
        if taken is None:
            taken = used_ports() - {p for p in previous.values() if p}
        wanted = port.get("nodePort")
        if wanted is None:
            port["nodePort"] = allocator.node_port(taken)
        elif wanted not in NODE_PORTS or wanted in taken:
            raise AllocationError(
                f"spec.ports.nodePort: provided port {wanted} is already allocated or out of range"
            )
        taken.add(port["nodePort"])


DEFAULTERS: dict[tuple[str, str], Callable[[dict, dict | None], None]] = {
    ("", "Pod"): _pod,
    ("", "Namespace"): _namespace,
    ("", "Secret"): _secret,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "PersistentVolume"): _pv,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replica_set,
    ("apps", "StatefulSet"): _stateful_set,
    ("apps", "DaemonSet"): _daemon_set,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cron_job,
}


def apply_defaults(rt: ResourceType, obj: dict, old: dict | None) -> None:
    """Fill server-side defaults into ``obj`` in place (``old``: the stored object on update)."""
    defaulter = DEFAULTERS.get((rt.group, rt.kind))
    if defaulter is not None and not rt.custom:
        defaulter(obj, old)


def used_service_values(services: Iterable[dict]) -> tuple[set[str], set[int]]:
    ips: set[str] = set()
    ports: set[int] = set()
    for svc in services:
        spec = svc.get("spec") or {}
        ips.update(ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip)
        ports.update(p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort"))
    return ips, ports
