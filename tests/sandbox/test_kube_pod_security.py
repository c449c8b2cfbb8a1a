"""Pod Security Admission on the simulated API server and its controllers: a namespace's
``enforce`` label refuses the pods its standard forbids, whoever creates them; and the
Gatekeeper stand-in's hook, run for real, puts that label on the namespace it is installed
in, as upstream's does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from sandbox.charts.server import ChartRepository
from sandbox.cluster import NodeGroupInfo, StaticClusterSource
from sandbox.kube.server import KubeSimulator
from sandbox.settings import FaultBook, Latency, SandboxSettings
from tests.sandbox import waiting
from tests.sandbox.helm_cli import helm

pytestmark = pytest.mark.sandbox

# Processes start and controllers act in the background: longer than the default wait.
wait_for = partial(waiting.wait_for, timeout=60, every=0.1)

ENFORCE = "pod-security.kubernetes.io/enforce"
COMPLIANT = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod_spec(**extra: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "busybox", "securityContext": dict(COMPLIANT)}
    container["securityContext"].update(extra.pop("context", {}))
    return {"containers": [container], **extra}


def host_agent() -> dict[str, Any]:
    """What Falco's pods need: the host's filesystem and added capabilities."""
    return pod_spec(
        context={"capabilities": {"add": ["SYS_ADMIN", "BPF"]}},
        volumes=[{"name": "proc", "hostPath": {"path": "/proc"}}],
    )


def message(refused: ApiException) -> str:
    return json.loads(refused.body)["message"]


def test_a_namespace_label_refuses_the_pods_its_standard_forbids(api_client: client.ApiClient):
    core = client.CoreV1Api(api_client)
    for name, level in (("strict", "restricted"), ("middle", "baseline"), ("open", None)):
        labels = {ENFORCE: level} if level else {}
        core.create_namespace({"metadata": {"name": name, "labels": labels}})

    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod("strict", {"metadata": {"name": "agent"}, "spec": host_agent()})
    assert refused.value.status == 403
    text = message(refused.value)
    assert 'pods "agent" is forbidden: violates PodSecurity "restricted:latest"' in text
    assert "hostPath volumes ('proc')" in text and "'BPF', 'SYS_ADMIN'" in text
    with pytest.raises(ApiException) as refused:  # restricted wants every field set
        core.create_namespaced_pod(
            "strict",
            {"metadata": {"name": "bare"}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        )
    assert "allowPrivilegeEscalation != false" in message(refused.value)
    assert "runAsNonRoot != true" in message(refused.value)
    core.create_namespaced_pod("strict", {"metadata": {"name": "ok"}, "spec": pod_spec()})

    privileged = pod_spec(context={"privileged": True, "allowPrivilegeEscalation": True})
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod("middle", {"metadata": {"name": "p"}, "spec": privileged})
    assert 'violates PodSecurity "baseline:latest": privileged' in message(refused.value)
    bare = {"containers": [{"name": "c", "image": "x"}]}
    core.create_namespaced_pod("middle", {"metadata": {"name": "bare"}, "spec": bare})
    core.create_namespaced_pod("open", {"metadata": {"name": "agent"}, "spec": host_agent()})


# ------------------------------------------------------ controllers and the Gatekeeper hook


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSimulator]:
    settings = SandboxSettings(Latency(time_scale=0.05), FaultBook())
    nodes = NodeGroupInfo("demo", "workers", ("t3.large",), "ON_DEMAND", 2, {}, ())
    work = tmp_path_factory.mktemp("pods")
    with KubeSimulator(settings, StaticClusterSource([nodes]), work_dir=work) as kube:
        yield kube


def daemon_set(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


def test_gatekeepers_hook_makes_its_namespace_restricted_for_the_pods_that_follow(
    cluster: KubeSimulator, repository: ChartRepository, tmp_path: Path
):
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    api = config.new_client_from_config(config_file=str(kubeconfig))
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    wait_for(lambda: len(core.list_node().items) == 2, what="nodes")
    core.create_namespace({"metadata": {"name": "shared"}})
    # Falco's agent runs on every node of the namespace before Gatekeeper arrives.
    apps.create_namespaced_daemon_set("shared", daemon_set("agent", host_agent()))
    wait_for(lambda: len(core.list_namespaced_pod("shared").items) == 2, what="agent pods")

    helm(
        kubeconfig, tmp_path, "install", "gatekeeper", "gatekeeper", "--repo", repository.url,
        "--version", "3.23.0", "--namespace", "shared", "--set", "replicas=1",
        "--wait", "--timeout", "60s",
    )  # fmt: skip
    labels = core.read_namespace("shared").metadata.labels
    assert labels[ENFORCE] == "restricted"  # the hook's kubectl ran
    assert labels["admission.gatekeeper.sh/ignore"] == "no-self-managing"

    # The agent's pods that exist stay; the next one is refused.
    agent = core.list_namespaced_pod("shared", label_selector="app=agent").items[0]
    core.delete_namespaced_pod(agent.metadata.name, "shared", _preload_content=False)
    time.sleep(1.5)  # the DaemonSet tries again, and is refused again
    left = core.list_namespaced_pod("shared", label_selector="app=agent").items
    assert len(left) == 1
    status = apps.read_namespaced_daemon_set("agent", "shared").status
    assert (status.desired_number_scheduled, status.current_number_scheduled) == (2, 1)
    api.close()
