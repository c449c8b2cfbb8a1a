"""Server-side printing: meta.k8s.io/v1 Tables, as ``kubectl get`` asks for them.

The columns of the common kinds follow kube-apiserver's printers; every other kind gets
NAME and AGE, and custom resources their CRD's additionalPrinterColumns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.kube.resources import ResourceType

Cell = str | int | float | bool | None
Column = tuple[str, str, int, Callable[[dict], Cell]]  # (name, type, priority, value)


def human_duration(seconds: float) -> str:
    """Durations the way kubectl prints ages (``45s``, ``3m20s``, ``5h``, ``12d``)."""
    if seconds < -1:
        return "<invalid>"
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    return f"{years}y{days % 365}d" if years < 8 and days % 365 else f"{years}y"


def _since(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - then).total_seconds())


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _age(obj: dict) -> Cell:
    return _since(_get(obj, "metadata.creationTimestamp"))


def _name(obj: dict) -> Cell:
    return _get(obj, "metadata.name")


def _pod_status(pod: dict) -> str:
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
    if _get(pod, "metadata.deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod_ready(pod: dict) -> str:
    statuses = _get(pod, "status.containerStatuses") or []
    total = len(_get(pod, "spec.containers") or [])
    return f"{sum(1 for cs in statuses if cs.get('ready'))}/{total}"


def _pod_restarts(pod: dict) -> Cell:
    return sum(
        int(cs.get("restartCount") or 0) for cs in _get(pod, "status.containerStatuses") or []
    )


def _node_status(node: dict) -> str:
    ready = next(
        (c for c in _get(node, "status.conditions") or [] if c.get("type") == "Ready"), None
    )
    text = (
        "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    )
    return f"{text},SchedulingDisabled" if _get(node, "spec.unschedulable") else text


def _node_roles(node: dict) -> str:
    roles = []
    for key, value in (_get(node, "metadata.labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            roles.append(key.partition("/")[2])
        elif key == "kubernetes.io/role":
            roles.append(value)
    return ",".join(sorted(r for r in roles if r)) or "<none>"


def _node_address(kind: str) -> Callable[[dict], Cell]:
    def value(node: dict) -> Cell:
        for address in _get(node, "status.addresses") or []:
            if address.get("type") == kind:
                return address.get("address")
        return "<none>"

    return value


def _service_external(svc: dict) -> str:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return spec.get("externalName") or "<none>"
    ingress = _get(svc, "status.loadBalancer.ingress") or []
    found = [i.get("hostname") or i.get("ip") for i in ingress] + list(
        spec.get("externalIPs") or []
    )
    if found:
        return ",".join(f for f in found if f)
    return "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"


def _service_ports(svc: dict) -> str:
    ports = []
    for p in _get(svc, "spec.ports") or []:
        node_port = f":{p['nodePort']}" if p.get("nodePort") else ""
        ports.append(f"{p.get('port')}{node_port}/{p.get('protocol', 'TCP')}")
    return ",".join(ports) or "<none>"


def _endpoints(ep: dict) -> str:
    found = []
    for subset in ep.get("subsets") or []:
        ports = [p.get("port") for p in subset.get("ports") or []] or [None]
        for address in subset.get("addresses") or []:
            for port in ports:
                ip = address.get("ip", "")
                found.append(f"{ip}:{port}" if port is not None else ip)
    if not found:
        return "<none>"
    shown = ",".join(found[:3])
    return f"{shown} + {len(found) - 3} more..." if len(found) > 3 else shown


def _selector(obj: dict) -> str:
    selector = _get(obj, "spec.selector") or {}
    labels = selector.get("matchLabels", selector) if isinstance(selector, dict) else {}
    return ",".join(f"{k}={v}" for k, v in labels.items() if isinstance(v, str)) or "<none>"


def _containers(field: str) -> Callable[[dict], Cell]:
    def value(obj: dict) -> Cell:
        containers = _get(obj, "spec.template.spec.containers") or []
        return ",".join(str(c.get(field, "")) for c in containers)

    return value


def _count(path: str) -> Callable[[dict], Cell]:
    def value(obj: dict) -> Cell:
        return len(_get(obj, path) or {})

    return value


def _int(path: str) -> Callable[[dict], Cell]:
    def value(obj: dict) -> Cell:
        return int(_get(obj, path) or 0)

    return value


def _text(path: str, default: str = "<none>") -> Callable[[dict], Cell]:
    def value(obj: dict) -> Cell:
        found = _get(obj, path)
        return default if found in (None, "") else found

    return value


def _ratio(have: str, want: str) -> Callable[[dict], Cell]:
    def value(obj: dict) -> Cell:
        return f"{int(_get(obj, have) or 0)}/{int(_get(obj, want) or 0)}"

    return value


def _job_status(job: dict) -> str:
    for cond in _get(job, "status.conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed", "Suspended"):
            return cond["type"]
    return "Running"


def _job_duration(job: dict) -> str:
    start, end = _get(job, "status.startTime"), _get(job, "status.completionTime")
    if not start:
        return ""
    try:
        began = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        ended = (
            datetime.strptime(end, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            if end
            else datetime.now(UTC)
        )
    except ValueError:
        return ""
    return human_duration((ended - began).total_seconds())


NAME: Column = ("Name", "string", 0, _name)
AGE: Column = ("Age", "string", 0, _age)

COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "Pod"): [
        NAME,
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, _pod_status),
        ("Restarts", "string", 0, _pod_restarts),
        AGE,
        ("IP", "string", 1, _text("status.podIP")),
        ("Node", "string", 1, _text("spec.nodeName")),
        ("Nominated Node", "string", 1, _text("status.nominatedNodeName")),
        ("Readiness Gates", "string", 1, lambda pod: "<none>"),
    ],
    ("", "Node"): [
        NAME,
        ("Status", "string", 0, _node_status),
        ("Roles", "string", 0, _node_roles),
        AGE,
        ("Version", "string", 0, _text("status.nodeInfo.kubeletVersion", "")),
        ("Internal-IP", "string", 1, _node_address("InternalIP")),
        ("External-IP", "string", 1, _node_address("ExternalIP")),
        ("OS-Image", "string", 1, _text("status.nodeInfo.osImage", "<unknown>")),
        ("Kernel-Version", "string", 1, _text("status.nodeInfo.kernelVersion", "<unknown>")),
        ("Container-Runtime", "string", 1, _text("status.nodeInfo.containerRuntimeVersion", "")),
    ],
    ("", "Namespace"): [NAME, ("Status", "string", 0, _text("status.phase", "")), AGE],
    ("", "Service"): [
        NAME,
        ("Type", "string", 0, _text("spec.type", "ClusterIP")),
        ("Cluster-IP", "string", 0, _text("spec.clusterIP")),
        ("External-IP", "string", 0, _service_external),
        ("Port(s)", "string", 0, _service_ports),
        AGE,
        (
            "Selector",
            "string",
            1,
            lambda svc: (
                ",".join(f"{k}={v}" for k, v in (_get(svc, "spec.selector") or {}).items())
                or "<none>"
            ),
        ),
    ],
    ("", "ConfigMap"): [
        NAME,
        (
            "Data",
            "integer",
            0,
            lambda cm: len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
        ),
        AGE,
    ],
    ("", "Secret"): [
        NAME,
        ("Type", "string", 0, _text("type", "")),
        ("Data", "integer", 0, _count("data")),
        AGE,
    ],
    ("", "Endpoints"): [NAME, ("Endpoints", "string", 0, _endpoints), AGE],
    ("", "ServiceAccount"): [NAME, ("Secrets", "integer", 0, _count("secrets")), AGE],
    ("", "PersistentVolumeClaim"): [
        NAME,
        ("Status", "string", 0, _text("status.phase", "")),
        ("Volume", "string", 0, _text("spec.volumeName", "")),
        ("Capacity", "string", 0, _text("status.capacity.storage", "")),
        ("Access Modes", "string", 0, lambda pvc: ",".join(_get(pvc, "status.accessModes") or [])),
        ("StorageClass", "string", 0, _text("spec.storageClassName", "<unset>")),
        AGE,
    ],
    ("apps", "Deployment"): [
        NAME,
        ("Ready", "string", 0, _ratio("status.readyReplicas", "spec.replicas")),
        ("Up-to-date", "integer", 0, _int("status.updatedReplicas")),
        ("Available", "integer", 0, _int("status.availableReplicas")),
        AGE,
        ("Containers", "string", 1, _containers("name")),
        ("Images", "string", 1, _containers("image")),
        ("Selector", "string", 1, _selector),
    ],
    ("apps", "ReplicaSet"): [
        NAME,
        ("Desired", "integer", 0, _int("spec.replicas")),
        ("Current", "integer", 0, _int("status.replicas")),
        ("Ready", "integer", 0, _int("status.readyReplicas")),
        AGE,
    ],
    ("apps", "StatefulSet"): [
        NAME,
        ("Ready", "string", 0, _ratio("status.readyReplicas", "spec.replicas")),
        AGE,
    ],
    ("apps", "DaemonSet"): [
        NAME,
        ("Desired", "integer", 0, _int("status.desiredNumberScheduled")),
        ("Current", "integer", 0, _int("status.currentNumberScheduled")),
        ("Ready", "integer", 0, _int("status.numberReady")),
        ("Up-to-date", "integer", 0, _int("status.updatedNumberScheduled")),
        ("Available", "integer", 0, _int("status.numberAvailable")),
        (
            "Node Selector",
            "string",
            0,
            lambda ds: (
                ",".join(
                    f"{k}={v}"
                    for k, v in (_get(ds, "spec.template.spec.nodeSelector") or {}).items()
                )
                or "<none>"
            ),
        ),
        AGE,
    ],
    ("batch", "Job"): [
        NAME,
        ("Status", "string", 0, _job_status),
        ("Completions", "string", 0, _ratio("status.succeeded", "spec.completions")),
        ("Duration", "string", 0, _job_duration),
        AGE,
    ],
}


def _printer_columns(crd: dict | None, version: str) -> list[Column] | None:
    if not crd:
        return None
    for entry in (crd.get("spec") or {}).get("versions") or []:
        if entry.get("name") != version or not entry.get("additionalPrinterColumns"):
            continue
        columns: list[Column] = [NAME]
        for col in entry["additionalPrinterColumns"]:
            path = str(col.get("jsonPath", "")).lstrip(".")
            if col.get("type") == "date":
                columns.append((col["name"], "string", col.get("priority", 0), _date(path)))
            else:
                columns.append(
                    (
                        col["name"],
                        col.get("type", "string"),
                        col.get("priority", 0),
                        _text(path, ""),
                    )
                )
        return columns
    return None


def _date(path: str) -> Callable[[dict], Cell]:
    def value(obj: dict) -> Cell:
        return _since(_get(obj, path))

    return value


def columns_for(rt: ResourceType, crd: dict | None = None) -> list[Column]:
    if rt.custom:
        return _printer_columns(crd, rt.version) or [NAME, AGE]
    return COLUMNS.get((rt.group, rt.kind), [NAME, AGE])


def table(
    rt: ResourceType,
    items: list[dict],
    resource_version: str,
    include_object: str = "Metadata",
    crd: dict | None = None,
) -> dict[str, Any]:
    """A Table of ``items``; ``include_object`` is None, Metadata or Object, as in the API."""
    columns = columns_for(rt, crd)
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": [value(obj) for _, _, _, value in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata") or {},
            }
        rows.append(row)
    definitions = [
        {
            "name": name,
            "type": kind,
            "format": "name" if name == "Name" else "",
            "description": "",
            "priority": priority,
        }
        for name, kind, priority, _ in columns
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
