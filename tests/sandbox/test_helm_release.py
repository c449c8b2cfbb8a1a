"""The generic Helm release of workflows 2-7 (``tasks.helm``) against the simulated cluster.

``ensure_release`` installs a catalogue chart from the sandbox's chart repository with the
real helm binary on a simulated cluster of three nodes: install, no-op, upgrade, and the
two ways a release can fail (a first install is uninstalled, an upgrade rolled back). Also
the pyhelm3 argument fix, namespaces, and the Prometheus Operator CRDs applied ahead of
the charts.
"""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from blueprint.catalogue import load_catalogue
from sandbox.charts.server import ChartRepository
from sandbox.cluster import NodeGroupInfo, StaticClusterSource
from sandbox.kube.server import KubeSimulator
from sandbox.settings import Fault, FaultBook, Latency, SandboxSettings
from sandbox.tools import ensure_tools
from tasks.helm import (
    MANAGED_BY,
    ReleaseResult,
    apply_crds,
    chart_crds,
    ensure_namespace,
    ensure_release,
)
from tasks.retries import ReleaseFailed

pytestmark = pytest.mark.sandbox

NODES = 3
CATALOGUE = load_catalogue()
DNS = CATALOGUE.component("external-dns").chart
CRDS = CATALOGUE.component("prometheus-crds").chart
assert DNS is not None and CRDS is not None
RELEASE = DNS.release  # "external-dns": its fullname, Deployment and values ConfigMap name
VALUES_CONFIGMAP = f"{RELEASE}-sandbox-values"
FAIL_SECONDS = 2.0  # helm's --timeout for releases whose pods never get Ready
INSTANCE = f"app.kubernetes.io/instance={RELEASE}"


def dns_values(interval: str, owner: str = "helm-release-test") -> dict[str, Any]:
    """Values of the external-dns chart; ``interval`` changes the pod template (an arg)."""
    return {"interval": interval, "txtOwnerId": owner, "policy": "upsert-only"}


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def simulator() -> Iterator[KubeSimulator]:
    # 0.1 s per guide minute: a pod is Ready 0.05 s after it is bound
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
    while len(core.list_node().items) < NODES:  # the node controller adds them within ~0.5 s
        assert time.monotonic() < deadline, "the simulated nodes never appeared"
        time.sleep(0.1)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def helm() -> Path:
    return ensure_tools()["helm"]


Converge = Callable[..., ReleaseResult]


@pytest.fixture(scope="module")
def converge(helm: Path, kubeconfig: Path, repository: ChartRepository, api) -> Converge:
    """``ensure_release`` of the catalogue's external-dns chart from the sandbox's
    repository into ``namespace`` (created first, as the release task does)."""

    def run(namespace: str, values: dict[str, Any], timeout: float = 60.0) -> ReleaseResult:
        ensure_namespace(api, namespace)
        return asyncio.run(
            ensure_release(
                helm=helm,
                kubeconfig=kubeconfig,
                chart=DNS,
                namespace=namespace,
                values=copy.deepcopy(values),
                timeout_seconds=timeout,
                repository_override=repository.url,
            )
        )

    return run


@pytest.fixture(scope="module")
def helm_cli(helm: Path, kubeconfig: Path) -> Callable[..., Any]:
    """The helm binary itself, reading what the release is (JSON output)."""

    def run(*args: str) -> Any:
        out = subprocess.run(
            [str(helm), *args, "--kubeconfig", str(kubeconfig), "--output", "json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    return run


def history(helm_cli, namespace: str) -> list[dict[str, Any]]:
    return helm_cli("history", RELEASE, "--namespace", namespace)


def deployed_values(helm_cli, namespace: str) -> dict[str, Any]:
    return helm_cli("get", "values", RELEASE, "--namespace", namespace) or {}


def rendered_values(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """The values the stand-in chart was rendered with, as its ConfigMap shows them."""
    configmap = client.CoreV1Api(api).read_namespaced_config_map(VALUES_CONFIGMAP, namespace)
    return yaml.safe_load(configmap.data["values.yaml"])


def pods_of_release(api: client.ApiClient, namespace: str) -> list[Any]:
    return client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=INSTANCE).items


@pytest.fixture(scope="module")
def installed(converge: Converge) -> ReleaseResult:
    """external-dns installed once in its own namespace."""
    return converge("dns-install", dns_values("1m"))


# ---------------------------------------------------------------- install, no-op, upgrade


def test_first_install_is_installed_at_revision_1(
    installed: ReleaseResult, helm_cli, api: client.ApiClient
):
    assert installed == ReleaseResult(
        name=RELEASE,
        namespace="dns-install",
        chart=DNS.name,
        version=DNS.version,
        revision=1,
        status="deployed",
        action="installed",
    )
    assert installed.changed
    revisions = history(helm_cli, "dns-install")
    assert [(r["revision"], r["status"]) for r in revisions] == [(1, "deployed")]
    assert revisions[0]["chart"] == f"{DNS.name}-{DNS.version}"
    assert deployed_values(helm_cli, "dns-install") == dns_values("1m")
    # --wait: the controller's pod was Ready when helm returned
    pods = pods_of_release(api, "dns-install")
    assert pods and all(
        any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        for p in pods
    )


def test_same_chart_and_values_leave_the_release_alone(
    installed: ReleaseResult, converge: Converge, helm_cli
):
    again = converge("dns-install", dns_values("1m"))

    assert again.action == "unchanged"
    assert not again.changed
    assert (again.revision, again.status, again.version) == (1, "deployed", DNS.version)
    assert [r["revision"] for r in history(helm_cli, "dns-install")] == [1]


def test_changed_values_upgrade_to_revision_2_and_reach_the_chart(
    converge: Converge, helm_cli, api: client.ApiClient
):
    first = converge("dns-upgrade", dns_values("1m"))
    assert (first.action, first.revision) == ("installed", 1)
    assert rendered_values(api, "dns-upgrade")["interval"] == "1m"

    upgraded = converge("dns-upgrade", dns_values("2m", owner="upgraded"))

    assert (upgraded.action, upgraded.revision, upgraded.status) == ("upgraded", 2, "deployed")
    assert [(r["revision"], r["status"]) for r in history(helm_cli, "dns-upgrade")] == [
        (1, "superseded"),
        (2, "deployed"),
    ]
    assert deployed_values(helm_cli, "dns-upgrade") == dns_values("2m", owner="upgraded")
    shown = rendered_values(api, "dns-upgrade")
    assert (shown["interval"], shown["txtOwnerId"]) == ("2m", "upgraded")
    deployment = client.AppsV1Api(api).read_namespaced_deployment(RELEASE, "dns-upgrade")
    assert "--interval=2m" in deployment.spec.template.spec.containers[0].args


# ------------------------------------------------------------------------------ failures


def test_failed_first_install_is_uninstalled(
    simulator: KubeSimulator, converge: Converge, helm_cli, api: client.ApiClient
):
    namespace = "dns-broken-install"
    simulator.settings.faults.add(Fault("pods-never-ready", f"{namespace}/{RELEASE}"))

    with pytest.raises(ReleaseFailed) as failed:
        converge(namespace, dns_values("1m"), timeout=FAIL_SECONDS)

    message = str(failed.value)
    assert not failed.value.transient  # pods that never get ready: another attempt won't help
    assert f"helm release {RELEASE} ({DNS.name} {DNS.version}) in {namespace} failed" in message
    assert message.endswith("the failed first install was uninstalled"), message
    assert helm_cli("list", "--all", "--namespace", namespace) == []
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    assert apps.list_namespaced_deployment(namespace, label_selector=INSTANCE).items == []
    assert core.list_namespaced_service(namespace, label_selector=INSTANCE).items == []
    assert core.list_namespaced_config_map(namespace, label_selector=INSTANCE).items == []
    assert core.list_namespaced_secret(namespace, label_selector="owner=helm").items == []
    deadline = time.monotonic() + 10
    while pods_of_release(api, namespace):  # the pods go with their ReplicaSet
        assert time.monotonic() < deadline, "the failed release's pods were never removed"
        time.sleep(0.1)
    assert simulator.settings.faults.fired.get("pods-never-ready", 0) >= 1


def test_failed_upgrade_is_rolled_back_to_the_last_good_revision(
    simulator: KubeSimulator, converge: Converge, helm_cli, api: client.ApiClient
):
    namespace = "dns-broken-upgrade"
    good = dns_values("1m")
    assert converge(namespace, good).revision == 1
    simulator.settings.faults.add(Fault("pods-never-ready", f"{namespace}/{RELEASE}"))

    with pytest.raises(ReleaseFailed) as failed:
        converge(namespace, dns_values("5m", owner="broken"), timeout=FAIL_SECONDS)

    assert str(failed.value).endswith("rolled back to revision 1"), str(failed.value)
    revisions = history(helm_cli, namespace)
    assert [(r["revision"], r["status"]) for r in revisions] == [
        (1, "superseded"),
        (2, "failed"),
        (3, "deployed"),
    ]
    assert "Rollback to 1" in revisions[-1]["description"]
    assert deployed_values(helm_cli, namespace) == good
    assert rendered_values(api, namespace)["interval"] == "1m"
    deployment = client.AppsV1Api(api).read_namespaced_deployment(RELEASE, namespace)
    assert "--interval=1m" in deployment.spec.template.spec.containers[0].args

    simulator.settings.faults.clear()
    healed = converge(namespace, good)
    assert (healed.action, healed.revision) == ("unchanged", 3)


# ---------------------------------------------------------------------------- namespaces


def test_ensure_namespace_creates_once_with_the_managed_by_label(api: client.ApiClient):
    core = client.CoreV1Api(api)
    assert "made-by-test" not in [n.metadata.name for n in core.list_namespace().items]

    assert ensure_namespace(api, "made-by-test") is True
    assert ensure_namespace(api, "made-by-test") is False

    created = core.read_namespace("made-by-test")
    assert MANAGED_BY.items() <= (created.metadata.labels or {}).items()
    # one that was already there is left as it was
    assert ensure_namespace(api, "default") is False
    assert not MANAGED_BY.keys() & (core.read_namespace("default").metadata.labels or {}).keys()


# ---------------------------------------------------------------------------- chart CRDs


def test_prometheus_operator_crds_are_created_then_left_alone(helm: Path, repository, api):
    crds = asyncio.run(chart_crds(helm, CRDS, repository.url))

    names = sorted(c["metadata"]["name"] for c in crds)
    assert {c["kind"] for c in crds} == {"CustomResourceDefinition"}
    assert {c["spec"]["group"] for c in crds} == {"monitoring.coreos.com"}
    assert {"servicemonitors.monitoring.coreos.com", "podmonitors.monitoring.coreos.com"} <= set(
        names
    )
    extensions = client.ApiextensionsV1Api(api)
    before = {c.metadata.name for c in extensions.list_custom_resource_definition().items}
    assert not before & set(names)

    created = apply_crds(api, crds)

    assert sorted(created) == [f"created {name}" for name in names]
    stored = {c.metadata.name: c for c in extensions.list_custom_resource_definition().items}
    assert set(names) <= set(stored)
    monitors = stored["servicemonitors.monitoring.coreos.com"]
    assert monitors.spec.names.kind == "ServiceMonitor"
    # the API serves the new kind at once: custom resources of it can be listed
    listed = client.CustomObjectsApi(api).list_cluster_custom_object(
        "monitoring.coreos.com", "v1", "servicemonitors"
    )
    assert listed["items"] == []

    assert apply_crds(api, crds) == []

    changed = copy.deepcopy(crds)
    target = next(c for c in changed if c["metadata"]["name"] == names[0])
    target["spec"]["names"]["shortNames"] = ["changed-by-test"]
    assert apply_crds(api, changed) == [f"updated {names[0]}"]
    assert extensions.read_custom_resource_definition(names[0]).spec.names.short_names == [
        "changed-by-test"
    ]
    assert apply_crds(api, crds) == [f"updated {names[0]}"]
    assert apply_crds(api, crds) == []


def test_crds_as_the_api_server_stores_them_are_left_alone(helm: Path, repository, api):
    chart_crd = next(
        c
        for c in asyncio.run(chart_crds(helm, CRDS, repository.url))
        if c["metadata"]["name"] == "podmonitors.monitoring.coreos.com"
    )
    assert "conversion" not in chart_crd["spec"]
    # the same CRD under a group of its own, so the test does not depend on the one above
    group = "defaults.monitoring.test"
    document = copy.deepcopy(chart_crd)
    document["metadata"] = {"name": f"{document['spec']['names']['plural']}.{group}"}
    document["spec"]["group"] = group
    # what kube-apiserver stores for it: the spec with its defaults filled in
    stored = copy.deepcopy(document)
    stored["spec"]["conversion"] = {"strategy": "None"}
    client.ApiextensionsV1Api(api).create_custom_resource_definition(stored)

    assert apply_crds(api, [document]) == []
