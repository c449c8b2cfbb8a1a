"""Prometheus servers behind the API server's service proxy, answered from the cluster.

No Prometheus runs in the sandbox: the service proxy answers for the servers the Prometheus
resources stand for. By the operator's convention, which the kube-prometheus-stack stand-in
follows, a Prometheus resource ``<name>`` runs as the StatefulSet ``prometheus-<name>``
(shards: ``prometheus-<name>-shard-<n>``; the real operator also labels it
``operator.prometheus.io/name: <name>``). A Service fronts that server when its selector
matches the StatefulSet's pod template labels and its port targets Prometheus's web port
9090 (by number, or by the name of a container port numbered 9090). This holds for the real
chart's ``<fullname>-prometheus`` and ``prometheus-operated`` Services as for the stand-in's.

Each such Service port gets a proxy handler (under its name and its number, as clients
address it), kept in step with the store: added when the resource, the StatefulSet and the
Service are there, removed as soon as one goes, so the API then answers what it answers for
any Service. A request is routed as the API server routes it, to a ready address of the
Service's Endpoints on that port: until a Prometheus pod is Ready there is none, and the
answer is the API server's 503 ServiceUnavailable, so a client waiting for Prometheus waits.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from sandbox.kube.errors import ApiError, not_found
from sandbox.kube.objects import controller_key, is_ready, labels
from sandbox.kube.prometheus_api import PrometheusApi, ServerInfo
from sandbox.kube.prometheus_targets import MONITORING_GROUP, discover, monitoring_type
from sandbox.kube.proxy import ProxyHandler, ProxyRequest, ProxyResponse, ServiceProxies
from sandbox.kube.reconciler import Kinds
from sandbox.kube.store import Event, Store

WEB_PORT = 9090  # the operator always runs Prometheus on its default listen port
NAME_LABEL = "operator.prometheus.io/name"
_STATEFULSET_NAME = re.compile(r"prometheus-(.+?)(?:-shard-\d+)?")

PortKey = tuple[str, str | None]  # (service, port as the proxy URL names it; None: no port)


def prometheus_name(statefulset: dict[str, Any]) -> str | None:
    """The Prometheus resource a StatefulSet runs, by the operator's naming and labels."""
    name = labels(statefulset).get(NAME_LABEL)
    if name:
        return name
    match = _STATEFULSET_NAME.fullmatch(statefulset["metadata"]["name"])
    return match.group(1) if match else None


def _template(statefulset: dict[str, Any]) -> dict[str, Any]:
    return (statefulset.get("spec") or {}).get("template") or {}


def _targets_web_port(port: dict[str, Any], template: dict[str, Any]) -> bool:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target) == WEB_PORT
    for container in (template.get("spec") or {}).get("containers") or []:
        for declared in container.get("ports") or []:
            if declared.get("name") == target:
                return declared.get("containerPort") == WEB_PORT
    return False


def _port_keys(port: dict[str, Any]) -> set[str | None]:
    # The API server accepts a port's number or its name; only an unnamed port (a Service's
    # only one) is reached without naming any.
    return {str(port["port"]), port.get("name") or None}


def _unavailable(service: str, message: str | None = None) -> ProxyResponse:
    error = ApiError(
        503,
        "ServiceUnavailable",
        message or f'no endpoints available for service "{service}"',
        {"name": service, "kind": "services"},
    )
    return ProxyResponse(503, json.dumps(error.status()).encode())


class PrometheusServers:
    """Keeps a proxy handler on every Service port that fronts a Prometheus server.

    It follows the store through a subscription (the store calls it after each write, on a
    writing thread), so it starts no thread of its own; and as each answer is worked out
    from the store when asked, a handler never answers from stale objects.
    """

    def __init__(
        self, store: Store, proxies: ServiceProxies, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._proxies = proxies
        self._kinds = Kinds.resolve(store.registry)
        self._clock = clock
        self._lock = threading.Lock()
        self._registered: dict[str, dict[PortKey, ProxyHandler]] = {}  # by namespace
        self._running = False

    def start(self) -> PrometheusServers:
        with self._lock:
            if self._running:
                return self
            self._running = True
        self._store.subscribe(self._on_event)
        for namespace in self._store.list(self._kinds.namespace)[0]:
            self._sync(namespace["metadata"]["name"])
        return self

    def stop(self) -> None:
        self._store.unsubscribe(self._on_event)
        with self._lock:
            self._running = False
            for namespace, handlers in self._registered.items():
                for service, port in handlers:
                    self._proxies.unregister(namespace, service, port)
            self._registered.clear()

    def registrations(self) -> list[tuple[str, str, str | None]]:
        """(namespace, service, port) of every handler in place, sorted."""
        with self._lock:
            found = [(ns, s, p) for ns, keys in self._registered.items() for s, p in keys]
        return sorted(found, key=lambda item: (item[0], item[1], item[2] or ""))

    # -- keeping the handlers in step -----------------------------------------------------

    def _on_event(self, event: Event) -> None:
        rt = event.resource
        relevant = rt in (self._kinds.service, self._kinds.stateful_set) or (
            rt.group == MONITORING_GROUP and rt.kind == "Prometheus"
        )
        namespace = event.obj["metadata"].get("namespace")
        if relevant and namespace:
            self._sync(namespace)

    def _sync(self, namespace: str) -> None:
        with self._lock:
            if not self._running:
                return
            wanted = self._fronting_ports(namespace)
            current = self._registered.setdefault(namespace, {})
            for key in [k for k in current if k not in wanted]:
                del current[key]
                self._proxies.unregister(namespace, *key)
            for key in wanted:
                if key not in current:
                    current[key] = self._handler(namespace, key[0], current)
                    self._proxies.register(namespace, key[0], current[key], key[1])
            if not current:
                del self._registered[namespace]

    def _handler(
        self, namespace: str, service: str, current: dict[PortKey, ProxyHandler]
    ) -> ProxyHandler:
        for (other, _), handler in current.items():
            if other == service:
                return handler  # one handler per Service, whichever port reaches it
        return functools.partial(self._answer, namespace, service)

    def _fronting_ports(self, namespace: str) -> set[PortKey]:
        prometheus_rt = monitoring_type(self._store, "Prometheus")
        if prometheus_rt is None:
            return set()
        names = {p["metadata"]["name"] for p in self._store.list(prometheus_rt, namespace)[0]}
        if not names:
            return set()
        statefulsets, _ = self._store.list(self._kinds.stateful_set, namespace)
        templates = [_template(s) for s in statefulsets if prometheus_name(s) in names]
        found: set[PortKey] = set()
        for service in self._store.list(self._kinds.service, namespace)[0]:
            spec = service.get("spec") or {}
            selector = spec.get("selector") or {}
            if not selector:
                continue
            for template in templates:
                if selector.items() <= labels(template).items():
                    for port in spec.get("ports") or []:
                        if _targets_web_port(port, template):
                            name = service["metadata"]["name"]
                            found.update((name, key) for key in _port_keys(port))
        return found

    # -- answering ------------------------------------------------------------------------

    def _answer(self, namespace: str, service_name: str, request: ProxyRequest) -> ProxyResponse:
        service = self._store.get(self._kinds.service, namespace, service_name)
        if service is None:
            error = not_found(self._kinds.service, service_name)
            return ProxyResponse(404, json.dumps(error.status()).encode())
        requested = request.port or ""
        port_name = requested
        if requested.isdigit():
            ports = (service.get("spec") or {}).get("ports") or []
            named = [p.get("name") or "" for p in ports if str(p.get("port")) == requested]
            if not named:
                message = f'no service port {requested} found for service "{service_name}"'
                return _unavailable(service_name, message)
            port_name = named[0]
        server = self._ready_server(namespace, service_name, port_name)
        if server is None:
            return _unavailable(service_name)
        prometheus, statefulset = server
        api = PrometheusApi(
            ServerInfo.of(statefulset),
            lambda: discover(self._store, self._kinds, prometheus),
            self._clock,
        )
        return api.handle(request)

    def _ready_server(
        self, namespace: str, service: str, port_name: str
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(Prometheus resource, StatefulSet) behind a ready address of the Service's port."""
        endpoints = self._store.get(self._kinds.endpoints, namespace, service)
        if endpoints is None:
            return None
        for subset in endpoints.get("subsets") or []:
            ports = [p for p in subset.get("ports") or [] if (p.get("name") or "") == port_name]
            if not ports or ports[0].get("port") != WEB_PORT:
                continue  # not this port, or another process (e.g. the config reloader)
            for address in subset.get("addresses") or []:
                server = self._server_at(namespace, address.get("targetRef") or {})
                if server is not None:
                    return server
        return None

    def _server_at(
        self, namespace: str, ref: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(Prometheus resource, StatefulSet) of the Ready Prometheus pod an address names."""
        prometheus_rt = monitoring_type(self._store, "Prometheus")
        if prometheus_rt is None or ref.get("kind") != "Pod":
            return None
        pod = self._store.get(self._kinds.pod, namespace, ref.get("name", ""))
        if pod is None or not is_ready(pod):
            return None
        owner = controller_key(pod, "StatefulSet")
        statefulset = self._store.get(self._kinds.stateful_set, *owner) if owner else None
        name = prometheus_name(statefulset) if statefulset else None
        prometheus = self._store.get(prometheus_rt, namespace, name) if name else None
        if prometheus is None or statefulset is None:
            return None
        return prometheus, statefulset
