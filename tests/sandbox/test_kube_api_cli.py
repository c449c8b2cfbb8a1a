"""The real kubectl and helm binaries against the simulated Kubernetes API."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import pytest
from kubernetes import client

from sandbox.kube.server import KubeSimulator
from sandbox.settings import SandboxSettings
from sandbox.tools import ensure_tools

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def tools() -> dict[str, Path]:
    return ensure_tools()


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    return {
        **os.environ,
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


def run(
    binary: Path, kubeconfig: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(binary), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, f"{binary.name} {' '.join(args)}: {done.stderr}"
    return done


MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: default
data:
  mode: "{mode}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        env: [{{name: MODE, value: "{mode}"}}]
"""


def test_kubectl(
    tools: dict[str, Path],
    kubeconfig: Path,
    cli_env: dict[str, str],
    api_client: client.ApiClient,
    tmp_path: Path,
) -> None:
    def kubectl(*args: str) -> str:
        return run(tools["kubectl"], kubeconfig, cli_env, *args).stdout

    namespaces = kubectl("get", "ns").splitlines()
    assert namespaces[0].split() == ["NAME", "STATUS", "AGE"]
    assert {line.split()[0] for line in namespaces[1:]} >= {"default", "kube-system"}
    assert "Kubernetes control plane is running at" in kubectl("cluster-info")

    manifest = tmp_path / "app.yaml"
    manifest.write_text(MANIFEST.format(mode="a", replicas=1))
    out = kubectl("apply", "-f", str(manifest))
    assert "configmap/settings created" in out and "deployment.apps/web created" in out
    manifest.write_text(MANIFEST.format(mode="b", replicas=2))
    out = kubectl("apply", "-f", str(manifest))
    assert "configmap/settings configured" in out and "deployment.apps/web configured" in out

    deployment = json.loads(kubectl("get", "deployment", "web", "-o", "json"))
    assert deployment["spec"]["replicas"] == 2
    assert deployment["metadata"]["generation"] == 2
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "MODE", "value": "b"}]
    assert json.loads(kubectl("get", "cm", "settings", "-o", "json"))["data"] == {"mode": "b"}

    out = kubectl("delete", "-f", str(manifest))
    assert 'configmap "settings" deleted' in out
    assert (
        "No resources found"
        in run(tools["kubectl"], kubeconfig, cli_env, "get", "deploy,cm", "-l", "app=web").stderr
    )

    core = client.CoreV1Api(api_client)
    for name, phase in (("coredns-1", "Running"), ("coredns-2", "Pending")):
        pod = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
        core.create_namespaced_pod("kube-system", pod)
        core.patch_namespaced_pod_status(name, "kube-system", {"status": {"phase": phase}})
    running = kubectl(
        "get", "pods", "-n", "kube-system", "--field-selector=status.phase=Running", "--no-headers"
    )
    assert [line.split()[0] for line in running.splitlines()] == ["coredns-1"]
    assert running.split()[1:3] == ["0/1", "Running"]


CHART_FILES = {
    "Chart.yaml": "apiVersion: v2\nname: tiny\nversion: 0.1.0\n",
    "values.yaml": "greeting: hello\n",
    "templates/configmap.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    ),
    "templates/service.yaml": (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n"
        "  type: ClusterIP\n  selector:\n    app: tiny\n  ports:\n  - port: 80\n"
        "    targetPort: 8080\n"
    ),
}


def test_helm_release_lifecycle(
    tools: dict[str, Path],
    kubeconfig: Path,
    cli_env: dict[str, str],
    api_client: client.ApiClient,
    tmp_path: Path,
) -> None:
    chart = tmp_path / "tiny"
    for name, text in CHART_FILES.items():
        (chart / name).parent.mkdir(parents=True, exist_ok=True)
        (chart / name).write_text(text)
    core = client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": "apps"}})

    def helm(*args: str) -> str:
        return run(tools["helm"], kubeconfig, cli_env, *args, "--namespace", "apps").stdout

    def greeting() -> str:
        return core.read_namespaced_config_map("demo-greeting", "apps").data["greeting"]

    installs = []
    for attempt in range(3):
        began = time.monotonic()
        helm("install", f"probe-{attempt}", str(chart), "--wait")
        installs.append(time.monotonic() - began)
    print(f"median helm install of the tiny chart: {statistics.median(installs):.3f}s")

    helm("install", "demo", str(chart), "--wait")
    assert greeting() == "hello"
    service = core.read_namespaced_service("demo", "apps")
    assert service.spec.cluster_ip and service.spec.ports[0].target_port == 8080

    helm(
        "upgrade",
        "demo",
        str(chart),
        "--set",
        "greeting=hi",
        "--wait",
    )
    assert greeting() == "hi"
    history = json.loads(helm("history", "demo", "-o", "json"))
    assert [(h["revision"], h["status"]) for h in history] == [(1, "superseded"), (2, "deployed")]

    helm("rollback", "demo", "1", "--wait")
    assert greeting() == "hello"
    status = json.loads(helm("status", "demo", "-o", "json"))
    assert (status["version"], status["info"]["status"]) == (3, "deployed")
    releases = {r["name"]: r for r in json.loads(helm("list", "-o", "json"))}
    assert releases["demo"]["revision"] == "3"

    secrets = core.list_namespaced_secret("apps", label_selector="name=demo,owner=helm").items
    assert sorted(s.metadata.name for s in secrets) == [
        f"sh.helm.release.v1.demo.v{i}" for i in (1, 2, 3)
    ]
    assert all(s.type == "helm.sh/release.v1" and s.data["release"] for s in secrets)

    helm("uninstall", "demo", "--wait")
    assert (
        core.list_namespaced_config_map("apps", field_selector="metadata.name=demo-greeting").items
        == []
    )
    assert core.list_namespaced_service("apps", field_selector="metadata.name=demo").items == []
    assert core.list_namespaced_secret("apps", label_selector="name=demo,owner=helm").items == []


def test_helm_installs_a_chart_with_a_crd(
    tools: dict[str, Path], cli_env: dict[str, str], tmp_path: Path
) -> None:
    """helm waits for its CRDs to be Established, so the simulated controllers run here."""
    chart = tmp_path / "with-crd"
    (chart / "crds").mkdir(parents=True)
    (chart / "templates").mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: with-crd\nversion: 0.1.0\n")
    (chart / "crds" / "gadgets.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata:\n  name: gadgets.example.com\nspec:\n  group: example.com\n"
        "  names: {plural: gadgets, singular: gadget, kind: Gadget}\n  scope: Namespaced\n"
        "  versions:\n  - name: v1\n    served: true\n    storage: true\n"
        "    schema:\n      openAPIV3Schema:\n        type: object\n"
        "        x-kubernetes-preserve-unknown-fields: true\n"
    )
    (chart / "templates" / "gadget.yaml").write_text(
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g1\nspec:\n"
        "  size: {{ .Values.size | default 1 }}\n"
    )
    with KubeSimulator(SandboxSettings()) as simulator:
        kubeconfig = simulator.write_kubeconfig(tmp_path / "kubeconfig")
        helm = [tools["helm"], kubeconfig, cli_env]
        common = ("--namespace", "default")
        run(*helm, "install", "gadgets", str(chart), *common)
        run(*helm, "upgrade", "gadgets", str(chart), *common, "--set", "size=3")
        kubectl = [tools["kubectl"], kubeconfig, cli_env]
        gadget = json.loads(run(*kubectl, "get", "gadget", "g1", "-o", "json").stdout)
        assert gadget["spec"] == {"size": 3}
        assert "gadgets.example.com" in run(*kubectl, "get", "crds").stdout
