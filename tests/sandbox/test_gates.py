"""The readiness gates of workflows 2 and 3 (``tasks.gates``) against the simulated cluster.

The ingress gate looks for the gateway's LoadBalancer Services and their addresses; the
observability gate asks Prometheus, through the API server's service proxy, what it
scrapes. Prometheus is the kube-prometheus-stack stand-in installed with the platform's
own values, cert-manager (with its ServiceMonitor) the chart it discovers besides itself.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config

from blueprint.catalogue import load_catalogue
from blueprint.loader import load_spec
from blueprint.pace import Pace
from blueprint.spec import Gate, bucket_name
from sandbox.aws.moto_app import ACCOUNT_ID as ACCOUNT
from sandbox.charts.server import ChartRepository
from sandbox.cluster import NodeGroupInfo, StaticClusterSource
from sandbox.kube.auth import SANDBOX_TOKEN
from sandbox.kube.proxy import ProxyRequest, ProxyResponse
from sandbox.kube.server import KubeSimulator
from sandbox.settings import Fault, FaultBook, Latency, SandboxSettings
from sandbox.tools import ensure_tools
from tasks.gates import (
    PROMETHEUS_PORT,
    GateNotReady,
    load_balancer_provisioned,
    prometheus_targets_discovered,
    retry_if_not_ready,
    retry_policy,
)
from tasks.helm import ensure_namespace, ensure_release
from tasks.values import ValuesContext, catalogue_namespaces, chart_values

pytestmark = pytest.mark.sandbox

T = TypeVar("T")
NODES = 3
SPEC = load_spec("sandbox")
CATALOGUE = load_catalogue()
NAMESPACES = catalogue_namespaces(SPEC)
OBSERVABILITY = SPEC.namespaces["observability"]
PROMETHEUS = CATALOGUE.component("prometheus").chart
CERT_MANAGER = CATALOGUE.component("cert-manager").chart
assert PROMETHEUS is not None and CERT_MANAGER is not None
PROMETHEUS_SERVICE = "prometheus-kube-prometheus-prometheus"  # the chart's <fullname>-prometheus
GATEWAY = "ambassador"
INSTANCE_LABEL = "app.kubernetes.io/instance"


def values_context() -> ValuesContext:
    return ValuesContext(
        spec=SPEC,
        namespaces=NAMESPACES,
        buckets={part: bucket_name(SPEC, part, ACCOUNT) for part in ("mimir", "loki")},
        service_account_roles={},
        dns_token_secret="external-dns-cloudflare",
    )


def eventually(check: Callable[[], T], timeout: float = 20.0) -> T:
    """``check``'s result once it stops raising GateNotReady (what the gate task's retries
    do); the last GateNotReady when it never does within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except GateNotReady:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def simulator() -> Iterator[KubeSimulator]:
    # 0.1 s per guide minute: a load balancer gets its hostname 0.2 s after it is asked for
    settings = SandboxSettings(Latency(time_scale=0.1), FaultBook())
    nodes = NodeGroupInfo("sandbox", "workers", ("t3.large",), "ON_DEMAND", NODES, {}, ())
    sim = KubeSimulator(settings, StaticClusterSource([nodes])).start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(autouse=True)
def no_fault_outlives_its_test(simulator: KubeSimulator) -> Iterator[None]:
    yield
    simulator.settings.faults.clear()


@pytest.fixture(scope="module")
def kubeconfig(simulator: KubeSimulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulator.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture(scope="module")
def api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + 15
    while len(core.list_node().items) < NODES:
        assert time.monotonic() < deadline, "the simulated nodes never appeared"
        time.sleep(0.1)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def install(kubeconfig: Path, repository: ChartRepository, api: client.ApiClient):
    """Install a catalogue helm-release component with the platform's values for it."""
    helm = ensure_tools()["helm"]

    def run(component: str) -> None:
        chart = CATALOGUE.component(component).chart
        assert chart is not None
        namespace = NAMESPACES[component]
        ensure_namespace(api, namespace)
        result = asyncio.run(
            ensure_release(
                helm=helm,
                kubeconfig=kubeconfig,
                chart=chart,
                namespace=namespace,
                values=chart_values(component, values_context()),
                timeout_seconds=60,
                repository_override=repository.url,
            )
        )
        assert result.action == "installed"

    return run


def load_balancer_service(
    api: client.ApiClient, namespace: str, name: str, kind: str = "LoadBalancer"
) -> None:
    ensure_namespace(api, namespace)
    client.CoreV1Api(api).create_namespaced_service(
        namespace,
        {
            "metadata": {"name": name, "labels": {INSTANCE_LABEL: GATEWAY}},
            "spec": {
                "type": kind,
                "selector": {"app.kubernetes.io/name": name},
                "ports": [{"name": "https", "port": 443, "targetPort": 8443}],
            },
        },
    )


def hostname_of(api: client.ApiClient, namespace: str, name: str) -> str | None:
    service = client.CoreV1Api(api).read_namespaced_service(name, namespace)
    ingress = service.status.load_balancer.ingress if service.status.load_balancer else None
    return ingress[0].hostname if ingress else None


def prometheus_targets(simulator: KubeSimulator, namespace: str, service: str) -> list[dict]:
    """Prometheus's active targets, asked through the service proxy over plain HTTP."""
    request = urllib.request.Request(
        f"{simulator.url}/api/v1/namespaces/{namespace}/services/"
        f"{service}:{PROMETHEUS_PORT}/proxy/api/v1/targets?state=active",
        headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]["activeTargets"]


# ---------------------------------------------------------------- ingress: load balancer


def test_load_balancer_gate_needs_a_load_balancer_service(api: client.ApiClient):
    with pytest.raises(GateNotReady, match=f"no LoadBalancer Service of release {GATEWAY}"):
        load_balancer_provisioned(api, "lb-none", GATEWAY)

    load_balancer_service(api, "lb-none", "ambassador-admin", kind="ClusterIP")
    with pytest.raises(GateNotReady, match=f"no LoadBalancer Service of release {GATEWAY}"):
        load_balancer_provisioned(api, "lb-none", GATEWAY)


def test_load_balancer_gate_waits_for_every_hostname(
    simulator: KubeSimulator, api: client.ApiClient
):
    namespace = "lb-fault"
    simulator.settings.faults.add(Fault("lb-never-provisioned", f"{namespace}/{GATEWAY}"))
    load_balancer_service(api, namespace, GATEWAY)
    load_balancer_service(api, namespace, "ambassador-internal")
    load_balancer_service(api, namespace, "ambassador-admin", kind="ClusterIP")

    deadline = time.monotonic() + 10
    while not hostname_of(api, namespace, "ambassador-internal"):
        assert time.monotonic() < deadline, "the unfaulted load balancer never got a hostname"
        time.sleep(0.05)
    while not simulator.settings.faults.fired.get("lb-never-provisioned"):
        assert time.monotonic() < deadline, "the fault never struck the gateway's Service"
        time.sleep(0.05)

    for _ in range(3):  # however often it is asked
        with pytest.raises(GateNotReady, match=f"Service {namespace}/{GATEWAY} has no address"):
            load_balancer_provisioned(api, namespace, GATEWAY)
        time.sleep(0.2)
    assert hostname_of(api, namespace, GATEWAY) is None

    simulator.settings.faults.clear("lb-never-provisioned")
    result = eventually(lambda: load_balancer_provisioned(api, namespace, GATEWAY))

    hostnames = {
        name: hostname_of(api, namespace, name) for name in (GATEWAY, "ambassador-internal")
    }
    assert result == {"load_balancers": hostnames}
    assert all(h and h.endswith(".amazonaws.com") for h in hostnames.values()), hostnames
    assert hostnames[GATEWAY] != hostnames["ambassador-internal"]


# --------------------------------------------------------- observability: Prometheus targets


def test_prometheus_gate_needs_a_prometheus_service(api: client.ApiClient):
    with pytest.raises(GateNotReady, match="no Prometheus Service"):
        prometheus_targets_discovered(api, "prom-missing", "prometheus")

    ensure_namespace(api, "prom-missing")
    core = client.CoreV1Api(api)
    for name, cluster_ip, port in (("headless", "None", PROMETHEUS_PORT), ("other", None, 8080)):
        core.create_namespaced_service(
            "prom-missing",
            {
                "metadata": {"name": name, "labels": {"release": "prometheus"}},
                "spec": {"clusterIP": cluster_ip, "ports": [{"name": "web", "port": port}]},
            },
        )
    with pytest.raises(GateNotReady, match="no Prometheus Service"):
        prometheus_targets_discovered(api, "prom-missing", "prometheus")


def test_prometheus_gate_when_nothing_answers_behind_the_service(api: client.ApiClient):
    ensure_namespace(api, "prom-silent")
    client.CoreV1Api(api).create_namespaced_service(
        "prom-silent",
        {
            "metadata": {"name": "lonely", "labels": {"release": "prometheus"}},
            "spec": {"ports": [{"name": "web", "port": PROMETHEUS_PORT}]},
        },
    )
    with pytest.raises(GateNotReady, match="Prometheus API not answering"):
        prometheus_targets_discovered(api, "prom-silent", "prometheus")


def answering_prometheus(
    simulator: KubeSimulator, api: client.ApiClient, namespace: str, targets: list[dict]
) -> list[ProxyRequest]:
    """A Service of release ``prometheus`` whose proxy answers /api/v1/targets with
    ``targets`` as the active ones (and one dropped target); returns the requests seen."""
    ensure_namespace(api, namespace)
    client.CoreV1Api(api).create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "prometheus-server", "labels": {"release": "prometheus"}},
            "spec": {"ports": [{"name": "http-web", "port": PROMETHEUS_PORT}]},
        },
    )
    seen: list[ProxyRequest] = []

    def answer(request: ProxyRequest) -> ProxyResponse:
        seen.append(request)
        data = {"activeTargets": targets, "droppedTargets": [{"discoveredLabels": {}}]}
        return ProxyResponse(body=json.dumps({"status": "success", "data": data}).encode())

    simulator.register_service_proxy(namespace, "prometheus-server", answer)
    return seen


def test_prometheus_gate_counts_active_targets_and_those_up(
    simulator: KubeSimulator, api: client.ApiClient
):
    seen = answering_prometheus(simulator, api, "prom-none", [])
    with pytest.raises(GateNotReady, match="Prometheus has discovered no targets yet"):
        prometheus_targets_discovered(api, "prom-none", "prometheus")
    assert [(r.method, r.path, r.port) for r in seen] == [
        ("GET", "/api/v1/targets", str(PROMETHEUS_PORT))
    ]

    targets = [
        {"scrapePool": f"pool-{i}", "health": h}
        for i, h in enumerate(["up", "up", "down", "unknown", "up"])
    ]
    answering_prometheus(simulator, api, "prom-some", targets)
    assert prometheus_targets_discovered(api, "prom-some", "prometheus") == {
        "active_targets": 5,
        "up": 3,
    }


def test_prometheus_gate_passes_once_the_stack_discovers_its_targets(
    simulator: KubeSimulator, api: client.ApiClient, install: Callable[[str], None]
):
    with pytest.raises(GateNotReady, match="no Prometheus Service"):
        prometheus_targets_discovered(api, OBSERVABILITY, "prometheus")

    install("prometheus")
    alone = eventually(lambda: prometheus_targets_discovered(api, OBSERVABILITY, "prometheus"))

    targets = prometheus_targets(simulator, OBSERVABILITY, PROMETHEUS_SERVICE)
    assert alone["active_targets"] == len(targets) > 0
    assert alone["up"] == sum(1 for t in targets if t["health"] == "up")
    assert not any("cert-manager" in t["scrapePool"] for t in targets)

    install("cert-manager")

    def with_cert_manager() -> dict[str, Any]:
        result = prometheus_targets_discovered(api, OBSERVABILITY, "prometheus")
        if result["active_targets"] <= alone["active_targets"]:
            raise GateNotReady("cert-manager's ServiceMonitor not discovered yet")
        return result

    both = eventually(with_cert_manager)
    targets = prometheus_targets(simulator, OBSERVABILITY, PROMETHEUS_SERVICE)
    pools = {t["scrapePool"] for t in targets}
    assert any(p.startswith(f"serviceMonitor/{NAMESPACES['cert-manager']}/") for p in pools)
    assert both == {
        "active_targets": len(targets),
        "up": sum(1 for t in targets if t["health"] == "up"),
    }
    assert both["up"] > alone["up"]


# ------------------------------------------------------------------------- retry budget


@pytest.mark.parametrize(
    ("timeout", "interval", "scale", "retries", "delay"),
    [
        ("300s", "30s", 60.0, 10, 30.0),  # real time: the spec's budget as it is
        ("600s", "60s", 60.0, 10, 60.0),
        ("600s", "70s", 60.0, 9, 70.0),  # a last attempt for the remainder
        ("5m", "30s", 3.0, 20, 1.5),  # paced: 15 s of budget, raised to the 30 s floor
        ("300s", "30s", 0.2, 300, 0.1),  # sandbox: 30 s floor, 0.1 s polls
        ("300s", "30s", 0.001, 600, 0.05),  # polls never faster than 50 ms
    ],
)
def test_retry_policy_spends_the_budget_one_attempt_per_interval(
    timeout: str, interval: str, scale: float, retries: int, delay: float
):
    gate = Gate(check="load_balancer_provisioned", timeout=timeout, retry_interval=interval)
    policy = retry_policy(gate, Pace(scale))
    assert policy == {
        "retries": retries,
        "retry_delay_seconds": pytest.approx(delay),
        "retry_condition_fn": retry_if_not_ready,
    }
