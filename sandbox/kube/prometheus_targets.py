"""Prometheus's scrape targets, from the cluster: what the operator's scrape config finds.

The Prometheus Operator turns each ServiceMonitor and PodMonitor a Prometheus resource
selects into scrape pools (one per monitor endpoint): Kubernetes service discovery plus
relabelling. This module computes what those pools end up with, from the stored objects:

- monitors: ``spec.serviceMonitorSelector`` / ``podMonitorSelector`` pick them by label (an
  empty selector picks all, an absent or null one none) in the namespaces the matching
  ``...NamespaceSelector`` picks (empty: all, absent or null: the Prometheus's own);
- a ServiceMonitor endpoint keeps, among the Endpoints of the namespaces its
  ``namespaceSelector`` names (``any``, ``matchNames``, else its own namespace), every
  address, ready or not, of a Service its ``selector`` matches, on the port its ``port``
  names (the Service port's name) or its ``targetPort`` names or numbers (the container's);
- a PodMonitor endpoint keeps, on the running pods its ``selector`` matches, every declared
  container port its ``port`` names (or its ``portNumber`` numbers).

What else the discovery saw in those namespaces are the pool's dropped targets. A target is
healthy when its pod is Ready: no process is scraped, a Ready pod stands for an exporter that
answers. Endpoint ``relabelings``, sharding, scrape classes and port-less pod targets are not
simulated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sandbox.kube.objects import is_ready, is_terminal, labels
from sandbox.kube.reconciler import Kinds
from sandbox.kube.resources import ResourceType
from sandbox.kube.selectors import selector_from_dict
from sandbox.kube.store import Store

MONITORING_GROUP = "monitoring.coreos.com"
MONITORING_API = f"{MONITORING_GROUP}/v1"
DEFAULT_SCRAPE_INTERVAL = "30s"  # the operator's default for spec.scrapeInterval
DEFAULT_SCRAPE_TIMEOUT = "10s"  # Prometheus's global default, capped by the interval
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def duration_seconds(text: str) -> float:
    """A Prometheus duration (``30s``, ``1m30s``, ``500ms``) in seconds."""
    text = (text or "").strip()
    match = _DURATION.match(text) if text else None
    if match is None:
        raise ValueError(f"not a valid duration string: {text!r}")
    return sum(int(n) * unit for n, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if n)


@dataclass(frozen=True)
class Target:
    """An active target: what ``/api/v1/targets`` and the ``up`` series are made of."""

    scrape_pool: str
    labels: dict[str, str]  # after relabelling, sorted by name
    discovered_labels: dict[str, str]
    scrape_url: str
    healthy: bool
    scrape_interval: str
    scrape_timeout: str

    @property
    def instance(self) -> str:
        return self.labels["instance"]


@dataclass(frozen=True)
class DroppedTarget:
    scrape_pool: str
    discovered_labels: dict[str, str]


@dataclass
class Discovery:
    pools: list[str] = field(default_factory=list)  # every scrape pool, in config order
    active: list[Target] = field(default_factory=list)
    dropped: list[DroppedTarget] = field(default_factory=list)


def monitoring_type(store: Store, kind: str) -> ResourceType | None:
    """A monitoring.coreos.com kind, when its CRD is installed."""
    return store.registry.by_kind(MONITORING_API, kind)


def _label_name(name: str) -> str:
    return _INVALID_LABEL_CHARS.sub("_", name)


def _meta_labels(prefix: str, values: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, value in values.items():
        out[f"{prefix}_label_{_label_name(name)}"] = str(value)
        out[f"{prefix}_labelpresent_{_label_name(name)}"] = "true"
    return out


class _Snapshot:
    """The objects one discovery reads; each namespace's lists are read once."""

    def __init__(self, store: Store, kinds: Kinds) -> None:
        self.store = store
        self.kinds = kinds
        self._lists: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def items(self, rt: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        key = (f"{rt.group}/{rt.plural}", namespace or "")
        if key not in self._lists:
            self._lists[key] = self.store.list(rt, namespace)[0]
        return self._lists[key]

    def named(self, rt: ResourceType, namespace: str) -> dict[str, dict[str, Any]]:
        return {item["metadata"]["name"]: item for item in self.items(rt, namespace)}

    def namespaces(self) -> list[str]:
        return [ns["metadata"]["name"] for ns in self.items(self.kinds.namespace)]

    def select_namespaces(self, selector: dict[str, Any] | None, own: str) -> list[str]:
        """Namespaces a label selector over namespaces picks; None means just ``own``."""
        if selector is None:
            return [own]
        wanted = selector_from_dict(selector)
        return [
            ns["metadata"]["name"]
            for ns in self.items(self.kinds.namespace)
            if wanted.matches(labels(ns))
        ]


@dataclass(frozen=True)
class _Endpoint:
    """One endpoint of a monitor: the scrape pool it becomes and how it scrapes."""

    pool: str
    spec: dict[str, Any]
    interval: str
    timeout: str

    @classmethod
    def of(cls, pool: str, spec: dict[str, Any], prometheus_spec: dict[str, Any]) -> _Endpoint:
        interval = (
            spec.get("interval") or prometheus_spec.get("scrapeInterval") or DEFAULT_SCRAPE_INTERVAL
        )
        timeout = spec.get("scrapeTimeout") or prometheus_spec.get("scrapeTimeout")
        if not timeout:
            default = duration_seconds(DEFAULT_SCRAPE_TIMEOUT)
            timeout = interval if duration_seconds(interval) < default else DEFAULT_SCRAPE_TIMEOUT
        return cls(pool, spec, interval, timeout)

    @property
    def scheme(self) -> str:
        return (self.spec.get("scheme") or "http").lower()

    @property
    def path(self) -> str:
        return self.spec.get("path") or "/metrics"

    def scrape_labels(self, address: str) -> dict[str, str]:
        return {
            "__address__": address,
            "__metrics_path__": self.path,
            "__scheme__": self.scheme,
            "__scrape_interval__": self.interval,
            "__scrape_timeout__": self.timeout,
            "job": self.pool,
        }

    def scrape_url(self, address: str) -> str:
        url = f"{self.scheme}://{address}{self.path}"
        params = self.spec.get("params") or {}
        if params:
            url += "?" + urlencode(sorted(params.items()), doseq=True)
        return url


def _container_port(pod: dict[str, Any] | None, number: int, protocol: str) -> tuple[str, dict]:
    """The container declaring a port (name, port), as service discovery matches them."""
    for container in ((pod or {}).get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            same_protocol = (port.get("protocol") or "TCP") == protocol
            if port.get("containerPort") == number and same_protocol:
                return container.get("name", ""), port
    return "", {}


def _pod_meta(pod: dict[str, Any]) -> dict[str, str]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    meta = {
        "__meta_kubernetes_pod_name": pod["metadata"]["name"],
        "__meta_kubernetes_pod_uid": pod["metadata"].get("uid", ""),
        "__meta_kubernetes_pod_ip": status.get("podIP", ""),
        "__meta_kubernetes_pod_host_ip": status.get("hostIP", ""),
        "__meta_kubernetes_pod_node_name": spec.get("nodeName", ""),
        "__meta_kubernetes_pod_phase": status.get("phase", ""),
        "__meta_kubernetes_pod_ready": "true" if is_ready(pod) else "false",
        **_meta_labels("__meta_kubernetes_pod", labels(pod)),
    }
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            meta["__meta_kubernetes_pod_controller_kind"] = ref.get("kind", "")
            meta["__meta_kubernetes_pod_controller_name"] = ref.get("name", "")
    return meta


def _container_meta(container: str, port: dict[str, Any]) -> dict[str, str]:
    if not container:
        return {}
    meta = {"__meta_kubernetes_pod_container_name": container}
    if port:
        meta.update(
            {
                "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
                "__meta_kubernetes_pod_container_port_protocol": port.get("protocol") or "TCP",
            }
        )
    return meta


def _copied_labels(names: list[str] | None, source: dict[str, str]) -> dict[str, str]:
    """``targetLabels`` / ``podTargetLabels``: labels of the object copied onto the target."""
    return {_label_name(n): source[n] for n in names or [] if source.get(n)}


def _finish(found: dict[str, str]) -> dict[str, str]:
    """Final target labels: empty ones dropped, sorted as Prometheus prints them."""
    return {k: v for k, v in sorted(found.items()) if v}


class _ServiceMonitorPool:
    """Endpoints discovery with the operator's relabelling for one ServiceMonitor endpoint."""

    def __init__(self, monitor: dict[str, Any], endpoint: _Endpoint) -> None:
        self.monitor = monitor
        self.endpoint = endpoint
        spec = monitor.get("spec") or {}
        self.selector = selector_from_dict(spec.get("selector") or {})
        self.job_label = spec.get("jobLabel") or ""
        self.target_labels = spec.get("targetLabels") or []
        self.pod_target_labels = spec.get("podTargetLabels") or []

    def _port_matches(self, port_name: str, container_port: dict[str, Any]) -> bool:
        spec = self.endpoint.spec
        if spec.get("port"):
            return port_name == spec["port"]
        target = spec.get("targetPort")
        if target is None:
            return True
        if isinstance(target, int) or str(target).isdigit():
            return str(container_port.get("containerPort", "")) == str(target)
        return container_port.get("name") == target

    def _endpoint_label(self) -> str:
        spec = self.endpoint.spec
        return str(spec.get("port") or spec.get("targetPort") or "")

    def scan(self, snapshot: _Snapshot, namespace: str) -> Iterator[Target | DroppedTarget]:
        kinds = snapshot.kinds
        services = snapshot.named(kinds.service, namespace)
        pods = snapshot.named(kinds.pod, namespace)
        for endpoints in snapshot.items(kinds.endpoints, namespace):
            service = services.get(endpoints["metadata"]["name"])
            for subset in endpoints.get("subsets") or []:
                for port in subset.get("ports") or []:
                    for ready, key in ((True, "addresses"), (False, "notReadyAddresses")):
                        for address in subset.get(key) or []:
                            yield self._target(namespace, service, port, address, ready, pods)

    def _target(
        self,
        namespace: str,
        service: dict[str, Any] | None,
        port: dict[str, Any],
        address: dict[str, Any],
        ready: bool,
        pods: dict[str, dict[str, Any]],
    ) -> Target | DroppedTarget:
        ref = address.get("targetRef") or {}
        pod = pods.get(ref.get("name", "")) if ref.get("kind") == "Pod" else None
        protocol = port.get("protocol") or "TCP"
        container, container_port = _container_port(pod, port["port"], protocol)
        host = f"{address['ip']}:{port['port']}"
        found = {
            **self.endpoint.scrape_labels(host),
            "__meta_kubernetes_namespace": namespace,
            "__meta_kubernetes_endpoint_port_name": port.get("name", ""),
            "__meta_kubernetes_endpoint_port_protocol": protocol,
            "__meta_kubernetes_endpoint_ready": "true" if ready else "false",
        }
        if address.get("nodeName"):
            found["__meta_kubernetes_endpoint_node_name"] = address["nodeName"]
        if ref:
            found["__meta_kubernetes_endpoint_address_target_kind"] = ref.get("kind", "")
            found["__meta_kubernetes_endpoint_address_target_name"] = ref.get("name", "")
        service_labels = labels(service) if service else {}
        if service:
            found["__meta_kubernetes_service_name"] = service["metadata"]["name"]
            found.update(_meta_labels("__meta_kubernetes_service", service_labels))
        if pod:
            found.update(_pod_meta(pod))
            found.update(_container_meta(container, container_port))
        kept = (
            service is not None
            and self.selector.matches(service_labels)
            and self._port_matches(port.get("name", ""), container_port)
            and not (pod and is_terminal(pod))
        )
        if not kept:
            return DroppedTarget(self.endpoint.pool, dict(sorted(found.items())))
        assert service is not None
        service_name = service["metadata"]["name"]
        final = {
            "instance": host,
            "namespace": namespace,
            "service": service_name,
            "job": service_labels.get(self.job_label) or service_name,
            "endpoint": self._endpoint_label(),
            **_copied_labels(self.target_labels, service_labels),
        }
        if pod:
            final.update(pod=pod["metadata"]["name"], container=container)
            final.update(_copied_labels(self.pod_target_labels, labels(pod)))
        elif ref.get("kind") == "Node":
            final["node"] = ref.get("name", "")
        return Target(
            scrape_pool=self.endpoint.pool,
            labels=_finish(final),
            discovered_labels=dict(sorted(found.items())),
            scrape_url=self.endpoint.scrape_url(host),
            healthy=is_ready(pod) if pod else ready,
            scrape_interval=self.endpoint.interval,
            scrape_timeout=self.endpoint.timeout,
        )


class _PodMonitorPool:
    """Pod discovery with the operator's relabelling for one PodMonitor endpoint."""

    def __init__(self, monitor: dict[str, Any], endpoint: _Endpoint) -> None:
        self.monitor = monitor
        self.endpoint = endpoint
        spec = monitor.get("spec") or {}
        self.selector = selector_from_dict(spec.get("selector") or {})
        self.job_label = spec.get("jobLabel") or ""
        self.pod_target_labels = spec.get("podTargetLabels") or []

    def _port_matches(self, port: dict[str, Any]) -> bool:
        spec = self.endpoint.spec
        if spec.get("port"):
            return port.get("name") == spec["port"]
        number = spec.get("portNumber", spec.get("targetPort"))
        if number is None:
            return True
        if isinstance(number, int) or str(number).isdigit():
            return str(port.get("containerPort")) == str(number)
        return port.get("name") == number

    def _endpoint_label(self) -> str:
        spec = self.endpoint.spec
        for key in ("port", "portNumber", "targetPort"):
            if spec.get(key) not in (None, ""):
                return str(spec[key])
        return ""

    def scan(self, snapshot: _Snapshot, namespace: str) -> Iterator[Target | DroppedTarget]:
        for pod in snapshot.items(snapshot.kinds.pod, namespace):
            if not (pod.get("status") or {}).get("podIP"):
                continue  # discovery lists pods once they have an address
            for container in (pod.get("spec") or {}).get("containers") or []:
                for port in container.get("ports") or []:
                    yield self._target(namespace, pod, container.get("name", ""), port)

    def _target(
        self, namespace: str, pod: dict[str, Any], container: str, port: dict[str, Any]
    ) -> Target | DroppedTarget:
        host = f"{pod['status']['podIP']}:{port['containerPort']}"
        pod_labels = labels(pod)
        found = {
            **self.endpoint.scrape_labels(host),
            "__meta_kubernetes_namespace": namespace,
            **_pod_meta(pod),
            **_container_meta(container, port),
        }
        kept = (
            self.selector.matches(pod_labels) and self._port_matches(port) and not is_terminal(pod)
        )
        if not kept:
            return DroppedTarget(self.endpoint.pool, dict(sorted(found.items())))
        meta = self.monitor["metadata"]
        final = {
            "instance": host,
            "namespace": namespace,
            "pod": pod["metadata"]["name"],
            "container": container,
            "job": pod_labels.get(self.job_label) or f"{meta['namespace']}/{meta['name']}",
            "endpoint": self._endpoint_label(),
            **_copied_labels(self.pod_target_labels, pod_labels),
        }
        return Target(
            scrape_pool=self.endpoint.pool,
            labels=_finish(final),
            discovered_labels=dict(sorted(found.items())),
            scrape_url=self.endpoint.scrape_url(host),
            healthy=is_ready(pod),
            scrape_interval=self.endpoint.interval,
            scrape_timeout=self.endpoint.timeout,
        )


def _selected_monitors(
    snapshot: _Snapshot, prometheus: dict[str, Any], kind: str, prefix: str
) -> list[dict[str, Any]]:
    """The monitors of ``kind`` the Prometheus's ``<prefix>Selector`` fields pick."""
    rt = monitoring_type(snapshot.store, kind)
    spec = prometheus.get("spec") or {}
    selector = spec.get(f"{prefix}Selector")
    if rt is None or selector is None:
        return []  # a null selector selects no monitors, as the operator reads it
    wanted = selector_from_dict(selector)
    own = prometheus["metadata"]["namespace"]
    found = []
    for namespace in snapshot.select_namespaces(spec.get(f"{prefix}NamespaceSelector"), own):
        found.extend(m for m in snapshot.items(rt, namespace) if wanted.matches(labels(m)))
    return sorted(found, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))


def _monitor_namespaces(
    snapshot: _Snapshot, monitor: dict[str, Any], ignore_selectors: bool
) -> list[str]:
    own = monitor["metadata"]["namespace"]
    selector = (monitor.get("spec") or {}).get("namespaceSelector") or {}
    if ignore_selectors:
        return [own]
    if selector.get("any"):
        return snapshot.namespaces()
    return list(dict.fromkeys(selector.get("matchNames") or [own]))


def _endpoints(
    monitor: dict[str, Any], prefix: str, key: str, prometheus_spec: dict[str, Any]
) -> list[_Endpoint]:
    """A monitor's endpoints, as scrape pools ``<prefix>/<namespace>/<name>/<index>``."""
    meta = monitor["metadata"]
    specs = (monitor.get("spec") or {}).get(key) or []
    return [
        _Endpoint.of(f"{prefix}/{meta['namespace']}/{meta['name']}/{index}", spec or {},
                     prometheus_spec)
        for index, spec in enumerate(specs)
    ]  # fmt: skip


def discover(store: Store, kinds: Kinds, prometheus: dict[str, Any]) -> Discovery:
    """The scrape pools of a Prometheus resource and their active and dropped targets."""
    snapshot = _Snapshot(store, kinds)
    spec = prometheus.get("spec") or {}
    ignore = bool(spec.get("ignoreNamespaceSelectors"))
    discovery = Discovery()
    for kind, prefix, key in (
        ("ServiceMonitor", "serviceMonitor", "endpoints"),
        ("PodMonitor", "podMonitor", "podMetricsEndpoints"),
    ):
        for monitor in _selected_monitors(snapshot, prometheus, kind, prefix):
            try:
                endpoints = _endpoints(monitor, prefix, key, spec)
            except ValueError:
                continue  # a bad interval: the operator skips a monitor it cannot render
            namespaces = _monitor_namespaces(snapshot, monitor, ignore)
            for endpoint in endpoints:
                scanner: _ServiceMonitorPool | _PodMonitorPool
                if kind == "ServiceMonitor":
                    scanner = _ServiceMonitorPool(monitor, endpoint)
                else:
                    scanner = _PodMonitorPool(monitor, endpoint)
                discovery.pools.append(endpoint.pool)
                for namespace in namespaces:
                    for found in scanner.scan(snapshot, namespace):
                        if isinstance(found, Target):
                            discovery.active.append(found)
                        else:
                            discovery.dropped.append(found)
    discovery.active.sort(key=lambda t: (t.scrape_pool, t.instance))
    return discovery
