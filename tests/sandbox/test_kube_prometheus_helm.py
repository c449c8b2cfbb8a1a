"""Prometheus's API through the service proxy, after the real helm installs the stand-ins.

kube-prometheus-stack and cert-manager (with its ServiceMonitor on) are installed from the
sandbox's chart repository with ``helm install --wait`` on a simulated cluster of three
nodes running the coredns and kube-proxy add-ons; Prometheus is then asked, through the
API server's service proxy with the official client, what it scrapes.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from sandbox.charts.server import ChartRepository
from sandbox.cluster import AddonInfo, NodeGroupInfo, StaticClusterSource
from sandbox.kube.objects import is_ready
from sandbox.kube.prometheus import PrometheusServers
from sandbox.kube.server import KubeSimulator
from sandbox.settings import Fault, FaultBook, Latency, SandboxSettings
from sandbox.tools import ensure_tools

pytestmark = pytest.mark.sandbox

NODES = 3
COREDNS_REPLICAS = 2  # the EKS add-on's Deployment
MONITORING = "monitoring"
PROMETHEUS = "prometheus-kube-prometheus-prometheus"  # the chart's Service and resource
PROMETHEUS_POD = f"prometheus-{PROMETHEUS}-0"
CERT_MANAGER_POOL = "serviceMonitor/cert-manager/cert-manager/0"

Proxy = Callable[..., tuple[int, Any]]


@pytest.fixture(scope="module")
def simulator() -> Iterator[KubeSimulator]:
    # 0.6 s per guide minute: a pod is Ready 0.3 s after it is bound
    settings = SandboxSettings(Latency(time_scale=0.6), FaultBook())
    nodes = NodeGroupInfo("demo", "workers", ("t3.large",), "ON_DEMAND", NODES, {}, ())
    addons = [AddonInfo("demo", "coredns", "ACTIVE"), AddonInfo("demo", "kube-proxy", "ACTIVE")]
    sim = KubeSimulator(settings, StaticClusterSource([nodes], addons)).start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def servers(simulator: KubeSimulator) -> PrometheusServers:
    """The Prometheus API the simulator itself runs behind its service proxy."""
    assert simulator.prometheus is not None
    return simulator.prometheus


@pytest.fixture(scope="module")
def kubeconfig(simulator: KubeSimulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulator.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture(scope="module")
def helm(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., float]:
    binary = str(ensure_tools()["helm"])
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }

    def run(*args: str) -> float:
        """Run helm against the simulator; returns how long it took."""
        began = time.monotonic()
        out = subprocess.run(
            [binary, *args, "--kubeconfig", str(kubeconfig)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return time.monotonic() - began

    return run


@pytest.fixture(scope="module")
def installed(
    helm, repository: ChartRepository, servers: PrometheusServers, record_testsuite_property
) -> None:
    def install(release: str, chart: str, namespace: str, *values: str) -> float:
        return helm(
            "install", release, chart, "--repo", repository.url, "--namespace", namespace,
            "--create-namespace", "--wait", "--timeout", "60s",
            *(arg for value in values for arg in ("--set", value)),
        )  # fmt: skip

    took = install("prometheus", "kube-prometheus-stack", MONITORING)
    record_testsuite_property("helm_install_kube_prometheus_stack_seconds", round(took, 2))
    # The chart's Prometheus selects the monitors labelled with its release.
    install(
        "cert-manager",
        "cert-manager",
        "cert-manager",
        "prometheus.servicemonitor.enabled=true",
        "prometheus.servicemonitor.labels.release=prometheus",
    )


@pytest.fixture(scope="module")
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    # The simulator routes on the path as sent, without percent-decoding it as
    # kube-apiserver does: keep the "service:port" and the proxied path literal.
    api.configuration.safe_chars_for_path_param = ":/"
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def proxy(api_client: client.ApiClient, installed: None) -> Proxy:
    """A request through the service proxy: (status, JSON body or text)."""

    def call(
        path: str,
        query: dict[str, str] | None = None,
        service: str = f"{PROMETHEUS}:9090",
        namespace: str = MONITORING,
        form: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        resource = f"/api/v1/namespaces/{namespace}/services/{service}/proxy/{path}"
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
        method, url, headers, body, post = api_client.param_serialize(
            "POST" if form else "GET",
            resource,
            query_params=list((query or {}).items()),
            header_params=headers,
            post_params=list((form or {}).items()),
            auth_settings=["BearerToken"],
        )
        response = api_client.call_api(method, url, headers, body, post)
        data = response.read()
        if "json" in (response.getheader("Content-Type") or ""):
            return response.status, json.loads(data)
        return response.status, data.decode()

    return call


def store_pods(simulator: KubeSimulator, namespace: str, selector: str) -> list[dict]:
    pods, _ = simulator.store.list(
        simulator.store.registry.by_kind("v1", "Pod"), namespace, selector
    )
    return pods


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def active_targets(proxy: Proxy) -> list[dict]:
    status, body = proxy("api/v1/targets", {"state": "active"})
    assert status == 200, body
    return body["data"]["activeTargets"]


def test_the_official_client_reads_the_targets(api_client: client.ApiClient, installed) -> None:
    core = client.CoreV1Api(api_client)
    response = core.connect_get_namespaced_service_proxy_with_path(
        f"{PROMETHEUS}:9090", MONITORING, "api/v1/targets", _preload_content=False
    )
    body = json.loads(response.data)
    assert body["status"] == "success"
    assert body["data"]["activeTargets"]


def test_targets_of_the_stack_and_of_cert_manager(proxy: Proxy, simulator: KubeSimulator):
    targets = active_targets(proxy)
    assert Counter(t["labels"]["job"] for t in targets) == {
        "prometheus-kube-prometheus-prometheus": 1,
        "prometheus-kube-prometheus-alertmanager": 1,
        "prometheus-kube-prometheus-operator": 1,
        "prometheus-kube-state-metrics": 1,
        "prometheus-grafana": 1,
        "prometheus-prometheus-node-exporter": NODES,
        "coredns": COREDNS_REPLICAS,  # jobLabel: the Service's "jobLabel" label
        "kube-proxy": NODES,
        "cert-manager": 1,
    }
    assert {(t["health"], t["lastError"]) for t in targets} == {("up", "")}

    (pod,) = store_pods(simulator, "cert-manager", "app.kubernetes.io/component=controller")
    address = f"{pod['status']['podIP']}:9402"
    (target,) = [t for t in targets if t["scrapePool"] == CERT_MANAGER_POOL]
    assert target["labels"] == {
        "container": "controller",
        "endpoint": "tcp-prometheus-servicemonitor",
        "instance": address,
        "job": "cert-manager",
        "namespace": "cert-manager",
        "pod": pod["metadata"]["name"],
        "service": "cert-manager",
    }
    assert target["scrapeUrl"] == target["globalUrl"] == f"http://{address}/metrics"
    assert (target["scrapeInterval"], target["scrapeTimeout"]) == ("60s", "10s")
    assert target["discoveredLabels"]["__address__"] == address
    assert target["discoveredLabels"]["__meta_kubernetes_pod_ready"] == "true"
    last = datetime.fromisoformat(target["lastScrape"].replace("Z", "+00:00"))
    assert 0 <= datetime.now(UTC).timestamp() - last.timestamp() <= 60 + 1
    assert 0 < target["lastScrapeDuration"] < 1

    # the stand-in's headless prometheus-operated Service opts out of monitors
    (own,) = [t for t in targets if t["labels"]["job"] == PROMETHEUS]
    assert own["labels"]["service"] == PROMETHEUS
    assert own["labels"]["pod"] == PROMETHEUS_POD
    assert own["scrapeInterval"] == "30s"  # the Prometheus resource's scrapeInterval


def test_every_selected_monitor_endpoint_is_a_scrape_pool(proxy: Proxy) -> None:
    status, body = proxy("api/v1/targets", {"state": "dropped"})
    assert status == 200
    data = body["data"]
    assert data["activeTargets"] == []
    pools = set(data["droppedTargetCounts"])
    # the kubelet monitor has two endpoints; the control-plane monitors find nothing on EKS
    assert len(pools) == 15
    assert {
        CERT_MANAGER_POOL,
        "serviceMonitor/monitoring/prometheus-kube-prometheus-kubelet/0",
        "serviceMonitor/monitoring/prometheus-kube-prometheus-kubelet/1",
        "serviceMonitor/monitoring/prometheus-kube-prometheus-kube-etcd/0",
    } <= pools
    # cert-manager's webhook Service is in the namespace, but not selected
    webhook = [d for d in data["droppedTargets"] if d["scrapePool"] == CERT_MANAGER_POOL]
    assert data["droppedTargetCounts"][CERT_MANAGER_POOL] == len(webhook) == 1
    assert webhook[0]["discoveredLabels"]["__meta_kubernetes_service_name"] == (
        "cert-manager-webhook"
    )


def test_up_query(proxy: Proxy) -> None:
    targets = active_targets(proxy)
    status, body = proxy("api/v1/query", {"query": "up"})
    assert status == 200
    assert body["data"]["resultType"] == "vector"
    result = body["data"]["result"]
    assert sorted(r["metric"]["instance"] for r in result) == sorted(
        t["labels"]["instance"] for t in targets
    )
    assert {r["value"][1] for r in result} == {"1"}
    assert all(r["metric"]["__name__"] == "up" for r in result)

    status, body = proxy("api/v1/query", form={"query": 'up{job="cert-manager"}'})
    assert status == 200
    (sample,) = body["data"]["result"]
    assert sample["metric"]["namespace"] == "cert-manager"
    assert isinstance(sample["value"][0], float)

    status, body = proxy("api/v1/query", {"query": "sum(up)"})
    assert (status, body["status"], body["errorType"]) == (422, "error", "execution")


def test_status_endpoints_on_every_port_reaching_prometheus(proxy: Proxy) -> None:
    for service in (f"{PROMETHEUS}:9090", f"{PROMETHEUS}:http-web", "prometheus-operated:web"):
        assert proxy("-/ready", service=service) == (200, "Prometheus Server is Ready.\n")
        assert proxy("-/healthy", service=service) == (200, "Prometheus Server is Healthy.\n")
    status, body = proxy("api/v1/status/buildinfo")
    assert (status, body["status"], body["data"]["version"]) == (200, "success", "3.5.0")

    # the config reloader's port, an undeclared port, a Service without Prometheus behind
    status, body = proxy("-/ready", service=f"{PROMETHEUS}:reloader-web")
    assert (status, body["reason"]) == (503, "ServiceUnavailable")
    status, body = proxy("-/ready", service=f"{PROMETHEUS}:1234")
    assert (status, body["reason"]) == (503, "ServiceUnavailable")
    status, body = proxy("-/ready", service="prometheus-kube-prometheus-alertmanager:9093")
    assert (status, body["reason"]) == (503, "ServiceUnavailable")


def test_monitors_are_taken_as_the_prometheus_selects_them(
    proxy: Proxy, api_client: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api_client)
    before = len(active_targets(proxy))

    def monitor(name: str, monitor_labels: dict[str, str], selector: dict[str, str]) -> dict:
        return {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": name, "labels": monitor_labels},
            "spec": {
                "selector": {"matchLabels": selector},
                "endpoints": [{"port": "tcp-prometheus-servicemonitor"}],
            },
        }

    cert_manager = {"app.kubernetes.io/name": "cert-manager"}
    created = [
        monitor("matches-nothing", {"release": "prometheus"}, {"app": "nothing-here"}),
        monitor("not-selected", {"team": "other"}, cert_manager),
    ]
    for body in created:
        custom.create_namespaced_custom_object(
            "monitoring.coreos.com", "v1", "cert-manager", "servicemonitors", body
        )
    try:
        status, body = proxy("api/v1/targets", {"state": "any"})
        assert status == 200
        data = body["data"]
        assert "serviceMonitor/cert-manager/matches-nothing/0" in data["droppedTargetCounts"]
        assert "serviceMonitor/cert-manager/not-selected/0" not in data["droppedTargetCounts"]
        assert len(data["activeTargets"]) == before
    finally:
        for body in created:
            custom.delete_namespaced_custom_object(
                "monitoring.coreos.com",
                "v1",
                "cert-manager",
                "servicemonitors",
                body["metadata"]["name"],
            )


def test_a_target_is_down_while_its_pod_is_not_ready(
    proxy: Proxy, simulator: KubeSimulator
) -> None:
    core_pod = simulator.store.registry.by_kind("v1", "Pod")
    selector = "app.kubernetes.io/component=controller"
    (old,) = store_pods(simulator, "cert-manager", selector)
    simulator.settings.faults.add(Fault("pods-never-ready", "cert-manager/cert-manager"))
    try:
        simulator.store.delete(core_pod, "cert-manager", old["metadata"]["name"])

        def replacement_down() -> dict | None:
            for target in active_targets(proxy):
                if target["scrapePool"] == CERT_MANAGER_POOL and target["health"] == "down":
                    return target
            return None

        down = wait_for(replacement_down)
        assert down["labels"]["pod"] != old["metadata"]["name"]
        assert down["lastError"] == (
            f'Get "{down["scrapeUrl"]}": dial tcp {down["labels"]["instance"]}: '
            "connect: connection refused"
        )
        assert down["discoveredLabels"]["__meta_kubernetes_endpoint_ready"] == "false"
        _, body = proxy("api/v1/query", {"query": 'up{job="cert-manager"}'})
        assert [r["value"][1] for r in body["data"]["result"]] == ["0"]
    finally:
        simulator.settings.faults.clear("pods-never-ready")
    wait_for(
        lambda: [
            t
            for t in active_targets(proxy)
            if t["scrapePool"] == CERT_MANAGER_POOL and t["health"] == "up"
        ]
    )


def test_503_until_the_prometheus_pod_is_ready(proxy: Proxy, simulator: KubeSimulator) -> None:
    core_pod = simulator.store.registry.by_kind("v1", "Pod")
    simulator.store.delete(core_pod, MONITORING, PROMETHEUS_POD)
    # the StatefulSet brings the pod back; it is Ready 0.3 s after it is bound
    status, body = proxy("api/v1/targets")
    assert (status, body["reason"]) == (503, "ServiceUnavailable")
    assert body["message"] == f'no endpoints available for service "{PROMETHEUS}"'
    wait_for(lambda: proxy("-/ready")[0] == 200)
    pod = simulator.store.get(core_pod, MONITORING, PROMETHEUS_POD)
    assert pod is not None and is_ready(pod)
    assert active_targets(proxy)


def test_uninstalling_removes_the_handlers(proxy: Proxy, servers: PrometheusServers, helm) -> None:
    assert (MONITORING, PROMETHEUS, "http-web") in servers.registrations()
    helm("uninstall", "prometheus", "--namespace", MONITORING, "--wait")
    assert servers.registrations() == []
    status, body = proxy("-/ready")
    assert (status, body["reason"]) == (404, "NotFound")
