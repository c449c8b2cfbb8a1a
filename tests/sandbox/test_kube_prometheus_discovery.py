"""Target discovery and the proxy handlers, on objects written straight to a live simulator.

A Prometheus laid out as the real operator lays it out (StatefulSet ``prometheus-k8s``
labelled ``operator.prometheus.io/name``, Service ``prometheus-k8s`` on port ``web``), and
an application in its own namespace, scheduled and made Ready by the simulated controllers.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox.charts.crds import crd_documents
from sandbox.charts.standins import load_standins
from sandbox.cluster import NodeGroupInfo, StaticClusterSource
from sandbox.kube.prometheus import PrometheusServers
from sandbox.kube.prometheus_targets import Discovery, discover
from sandbox.kube.reconciler import Kinds
from sandbox.kube.server import KubeSimulator
from sandbox.settings import Fault, FaultBook, SandboxSettings

pytestmark = pytest.mark.sandbox

MON, APPS = "mon", "apps"
SERVER_LABELS = {"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": "k8s"}


@pytest.fixture(scope="module")
def simulator() -> Iterator[KubeSimulator]:
    faults = FaultBook([Fault("pods-never-ready", f"{APPS}/slow")])
    nodes = NodeGroupInfo("demo", "workers", ("t3.large",), "ON_DEMAND", 2, {}, ())
    sim = KubeSimulator(SandboxSettings(faults=faults), StaticClusterSource([nodes])).start()
    try:
        for document in crd_documents(load_standins().charts["kube-prometheus-stack"].crds):
            create(sim, document)
        for namespace in (MON, APPS):
            create(sim, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def servers(simulator: KubeSimulator) -> Iterator[PrometheusServers]:
    servers = PrometheusServers(simulator.store, simulator.proxies).start()
    try:
        yield servers
    finally:
        servers.stop()


def create(sim: KubeSimulator, obj: dict[str, Any]) -> dict[str, Any]:
    rt = sim.store.registry.by_kind(obj["apiVersion"], obj["kind"])
    assert rt is not None, obj["kind"]
    return sim.store.create(rt, obj)


def delete(sim: KubeSimulator, api_version: str, kind: str, namespace: str, name: str) -> None:
    rt = sim.store.registry.by_kind(api_version, kind)
    assert rt is not None
    sim.store.delete(rt, namespace, name)


def pod(name: str, labels: dict[str, str], ports: dict[str, int], **spec: Any) -> dict:
    container = {
        "name": "main",
        "image": "example/app:1",
        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports.items()],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": APPS, "labels": labels},
        "spec": {"containers": [container], **spec},
    }


def monitoring(kind: str, name: str, namespace: str, spec: dict, **labels: str) -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def application(simulator: KubeSimulator) -> dict[str, dict]:
    """Pods web-0 (Ready), slow (never Ready), batch (finished) behind the Service web."""
    web = {"app": "web", "tier": "front"}
    create(simulator, pod("web-0", web, {"metrics": 8080, "http": 80}))
    create(simulator, pod("slow", web, {"metrics": 8080, "http": 80}))
    create(simulator, pod("batch", web, {"metrics": 8080}, restartPolicy="Never"))
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": APPS, "labels": {"team": "a", "job-name": "w"}},
        "spec": {
            "selector": {"app": "web"},
            "ports": [
                {"name": "metrics", "port": 8080, "targetPort": "metrics"},
                {"name": "http", "port": 80, "targetPort": 80},
            ],
        },
    }
    create(simulator, service)
    create(
        simulator,
        monitoring(
            "ServiceMonitor",
            "web",
            MON,
            {
                "selector": {"matchLabels": {"team": "a"}},
                "namespaceSelector": {"matchNames": [APPS]},
                "jobLabel": "job-name",
                "targetLabels": ["team"],
                "podTargetLabels": ["tier"],
                "endpoints": [
                    {"port": "metrics"},
                    {"targetPort": 80},
                    {
                        "targetPort": "metrics",
                        "path": "/m",
                        "scheme": "HTTPS",
                        "interval": "5s",
                        "params": {"format": ["text"]},
                    },
                ],
            },
            release="k8s",
        ),
    )
    create(
        simulator,
        monitoring(
            "ServiceMonitor", "local", APPS, {"selector": {}, "endpoints": [{"port": "http"}]}
        ),
    )
    create(
        simulator,
        monitoring(
            "PodMonitor",
            "pods",
            MON,
            {
                "selector": {"matchLabels": {"app": "web"}},
                "namespaceSelector": {"any": True},
                "podMetricsEndpoints": [{"port": "metrics"}],
            },
        ),
    )
    store, kinds = simulator.store, Kinds.resolve(simulator.store.registry)

    def settled() -> dict[str, dict] | None:
        pods = {p["metadata"]["name"]: p for p in store.list(kinds.pod, APPS)[0]}
        phases = {name: (p.get("status") or {}).get("phase") for name, p in pods.items()}
        endpoints = store.get(kinds.endpoints, APPS, "web")
        subsets = (endpoints or {}).get("subsets") or []
        ready = subsets and subsets[0].get("addresses") and subsets[0].get("notReadyAddresses")
        if phases == {"web-0": "Running", "slow": "Running", "batch": "Succeeded"} and ready:
            return pods
        return None

    return wait_for(settled)


def discovered(sim: KubeSimulator, spec: dict[str, Any]) -> Discovery:
    prometheus = monitoring("Prometheus", "k8s", MON, spec)
    return discover(sim.store, Kinds.resolve(sim.store.registry), prometheus)


def by_pool(found: Discovery) -> dict[str, list]:
    pools: dict[str, list] = {pool: [] for pool in found.pools}
    for target in found.active:
        pools[target.scrape_pool].append(target)
    return pools


# -- which monitors ---------------------------------------------------------------------------


def test_absent_selectors_select_no_monitor(simulator: KubeSimulator, application) -> None:
    assert discovered(simulator, {}).pools == []
    assert discovered(simulator, {"serviceMonitorSelector": None}).pools == []


def test_monitor_and_namespace_selectors(simulator: KubeSimulator, application) -> None:
    own_namespace = discovered(simulator, {"serviceMonitorSelector": {}})
    assert own_namespace.pools == [f"serviceMonitor/{MON}/web/{i}" for i in range(3)]

    everywhere = {"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": {}}
    assert f"serviceMonitor/{APPS}/local/0" in discovered(simulator, everywhere).pools

    labelled = {
        "serviceMonitorSelector": {"matchLabels": {"release": "k8s"}},
        "serviceMonitorNamespaceSelector": {},
    }
    assert discovered(simulator, labelled).pools == own_namespace.pools

    only_apps = {
        "serviceMonitorSelector": {},
        "serviceMonitorNamespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": APPS}},
    }
    assert discovered(simulator, only_apps).pools == [f"serviceMonitor/{APPS}/local/0"]


# -- which targets ----------------------------------------------------------------------------


def test_service_monitor_targets(simulator: KubeSimulator, application: dict[str, dict]) -> None:
    pools = by_pool(discovered(simulator, {"serviceMonitorSelector": {}}))
    web_ip = application["web-0"]["status"]["podIP"]
    slow_ip = application["slow"]["status"]["podIP"]

    by_name, by_number, tuned = (pools[f"serviceMonitor/{MON}/web/{i}"] for i in range(3))
    assert [(t.instance, t.healthy) for t in by_name] == sorted(
        [(f"{web_ip}:8080", True), (f"{slow_ip}:8080", False)]
    )
    ready = next(t for t in by_name if t.healthy)
    assert ready.labels == {
        "container": "main",
        "endpoint": "metrics",
        "instance": f"{web_ip}:8080",
        "job": "w",  # the Service's label named by jobLabel
        "namespace": APPS,
        "pod": "web-0",
        "service": "web",
        "team": "a",  # targetLabels
        "tier": "front",  # podTargetLabels
    }
    assert (ready.scrape_interval, ready.scrape_timeout) == ("30s", "10s")
    assert ready.discovered_labels["__meta_kubernetes_service_label_job_name"] == "w"

    assert {t.instance for t in by_number} == {f"{web_ip}:80", f"{slow_ip}:80"}
    assert {t.labels["endpoint"] for t in by_number} == {"80"}

    tuned_ready = next(t for t in tuned if t.healthy)
    assert tuned_ready.scrape_url == f"https://{web_ip}:8080/m?format=text"
    assert (tuned_ready.scrape_interval, tuned_ready.scrape_timeout) == ("5s", "5s")


def test_dropped_targets_are_what_the_pool_discarded(simulator, application) -> None:
    found = discovered(simulator, {"serviceMonitorSelector": {}})
    dropped = [d for d in found.dropped if d.scrape_pool == f"serviceMonitor/{MON}/web/0"]
    # the two addresses on the Service's other port
    assert sorted(d.discovered_labels["__meta_kubernetes_endpoint_port_name"] for d in dropped) == [
        "http",
        "http",
    ]


def test_pod_monitor_targets(simulator: KubeSimulator, application: dict[str, dict]) -> None:
    found = discovered(simulator, {"podMonitorSelector": {}})
    (pool,) = found.pools
    assert pool == f"podMonitor/{MON}/pods/0"
    # the finished batch pod is no target
    assert {(t.labels["pod"], t.healthy) for t in found.active} == {
        ("web-0", True),
        ("slow", False),
    }
    web = next(t for t in found.active if t.labels["pod"] == "web-0")
    assert web.labels == {
        "container": "main",
        "endpoint": "metrics",
        "instance": f"{application['web-0']['status']['podIP']}:8080",
        "job": f"{MON}/pods",
        "namespace": APPS,
        "pod": "web-0",
    }


def test_ignoring_namespace_selectors_keeps_monitors_at_home(simulator, application) -> None:
    found = discovered(simulator, {"serviceMonitorSelector": {}, "ignoreNamespaceSelectors": True})
    assert found.pools and found.active == []  # the web monitor now looks only in "mon"


# -- the proxy handlers -----------------------------------------------------------------------


def proxy(sim: KubeSimulator, service: str, path: str) -> tuple[int, Any]:
    url = f"{sim.url}/api/v1/namespaces/{MON}/services/{service}/proxy/{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            status, data, kind = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, data, kind = error.code, error.read(), error.headers
    if "json" in kind.get("Content-Type", ""):
        return status, json.loads(data)
    return status, data.decode()


@pytest.fixture(scope="module")
def server(simulator: KubeSimulator) -> None:
    """The StatefulSet the operator would run for the Prometheus resource "k8s"."""
    template = {
        "metadata": {"labels": SERVER_LABELS},
        "spec": {
            "containers": [
                {
                    "name": "prometheus",
                    "image": "quay.io/prometheus/prometheus:v2.55.1",
                    "ports": [{"name": "web", "containerPort": 9090, "protocol": "TCP"}],
                }
            ]
        },
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "prometheus-k8s", "namespace": MON, "labels": SERVER_LABELS},
        "spec": {
            "replicas": 1,
            "serviceName": "prometheus-operated",
            "selector": {"matchLabels": SERVER_LABELS},
            "template": template,
        },
    }
    create(simulator, statefulset)


PROMETHEUS_SPEC = {"serviceMonitorSelector": {}, "podMonitorSelector": {}}


def ensure_prometheus(sim: KubeSimulator) -> None:
    rt = sim.store.registry.by_kind("monitoring.coreos.com/v1", "Prometheus")
    assert rt is not None
    if sim.store.get(rt, MON, "k8s") is None:
        create(sim, monitoring("Prometheus", "k8s", MON, PROMETHEUS_SPEC))


def service(name: str, ports: list[dict]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": MON},
        "spec": {"selector": SERVER_LABELS, "ports": ports},
    }


def test_handlers_follow_the_prometheus_resource(
    simulator: KubeSimulator, servers: PrometheusServers, server: None, application
) -> None:
    create(
        simulator, service("prometheus-k8s", [{"name": "web", "port": 9090, "targetPort": "web"}])
    )
    assert servers.registrations() == []
    status, body = proxy(simulator, "prometheus-k8s:web", "-/ready")
    assert (status, body["reason"]) == (503, "ServiceUnavailable")

    ensure_prometheus(simulator)
    assert servers.registrations() == [
        (MON, "prometheus-k8s", "9090"),
        (MON, "prometheus-k8s", "web"),
    ]
    wait_for(lambda: proxy(simulator, "prometheus-k8s:web", "-/ready")[0] == 200)
    status, body = proxy(simulator, "prometheus-k8s:9090", "api/v1/status/buildinfo")
    assert (status, body["data"]["version"]) == (200, "2.55.1")
    status, body = proxy(simulator, "prometheus-k8s:web", "api/v1/targets?state=active")
    assert status == 200
    pools = {t["scrapePool"] for t in body["data"]["activeTargets"]}
    assert pools == {f"serviceMonitor/{MON}/web/{i}" for i in range(3)} | {
        f"podMonitor/{MON}/pods/0"
    }

    delete(simulator, "monitoring.coreos.com/v1", "Prometheus", MON, "k8s")
    assert servers.registrations() == []
    status, body = proxy(simulator, "prometheus-k8s:web", "-/ready")
    assert (status, body["reason"]) == (503, "ServiceUnavailable")

    ensure_prometheus(simulator)
    assert servers.registrations()
    delete(simulator, "v1", "Service", MON, "prometheus-k8s")
    assert servers.registrations() == []
    status, body = proxy(simulator, "prometheus-k8s:web", "-/ready")
    assert (status, body["reason"]) == (404, "NotFound")


def test_an_unnamed_port_is_reached_without_naming_one(
    simulator: KubeSimulator, servers: PrometheusServers, server: None
) -> None:
    ensure_prometheus(simulator)
    create(simulator, service("plain", [{"port": 9090}]))
    assert (MON, "plain", None) in servers.registrations()
    wait_for(lambda: proxy(simulator, "plain", "-/healthy")[0] == 200)
    assert proxy(simulator, "plain:9090", "-/healthy")[0] == 200
    status, body = proxy(simulator, "plain:8080", "-/healthy")
    assert (status, body["message"]) == (503, 'no service port 8080 found for service "plain"')


def test_stopping_removes_every_handler(
    simulator: KubeSimulator, servers: PrometheusServers, server: None
) -> None:
    ensure_prometheus(simulator)
    if not any(s == "plain" for _, s, _ in servers.registrations()):
        create(simulator, service("plain", [{"port": 9090}]))
    wait_for(lambda: proxy(simulator, "plain", "-/healthy")[0] == 200)
    servers.stop()
    assert servers.registrations() == []
    assert proxy(simulator, "plain", "-/healthy")[0] == 503
    servers.start()
    assert (MON, "plain", None) in servers.registrations()
    assert proxy(simulator, "plain", "-/healthy")[0] == 200
