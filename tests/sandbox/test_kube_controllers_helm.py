"""The real ``helm install --wait`` against the API simulator and its simulated controllers."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.cluster import NodeGroupInfo, StaticClusterSource
from sandbox.kube.server import KubeSimulator
from sandbox.settings import Fault, FaultBook, Latency, SandboxSettings
from sandbox.tools import ensure_tools

pytestmark = pytest.mark.sandbox

CHART = {
    "Chart.yaml": """\
apiVersion: v2
name: tiny
version: 0.1.0
appVersion: "1.0"
""",
    "templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  labels: {app.kubernetes.io/instance: {{ .Release.Name }}, app.kubernetes.io/name: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/instance: {{ .Release.Name }}, app.kubernetes.io/name: web}
  template:
    metadata:
      labels: {app.kubernetes.io/instance: {{ .Release.Name }}, app.kubernetes.io/name: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{name: http, containerPort: 80}]
""",
    "templates/statefulset.yaml": """\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}-db
spec:
  replicas: 2
  serviceName: {{ .Release.Name }}-db
  selector:
    matchLabels: {app.kubernetes.io/instance: {{ .Release.Name }}, app.kubernetes.io/name: db}
  template:
    metadata:
      labels: {app.kubernetes.io/instance: {{ .Release.Name }}, app.kubernetes.io/name: db}
    spec:
      containers:
        - name: db
          image: postgres:16
  volumeClaimTemplates:
    - metadata: {name: data}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 1Gi}}
""",
    "templates/service.yaml": """\
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-web
spec:
  selector: {app.kubernetes.io/instance: {{ .Release.Name }}, app.kubernetes.io/name: web}
  ports: [{name: http, port: 80, targetPort: http}]
""",
}


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chart") / "tiny"
    for name, text in CHART.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def simulator() -> Iterator[KubeSimulator]:
    # 0.2 s per guide minute: pods get Ready 0.1 s after they are bound
    settings = SandboxSettings(Latency(time_scale=0.2), FaultBook())
    nodes = NodeGroupInfo("demo", "workers", ("t3.large",), "ON_DEMAND", 3, {}, ())
    sim = KubeSimulator(settings, StaticClusterSource([nodes])).start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def helm(simulator: KubeSimulator, tmp_path_factory: pytest.TempPathFactory):
    binary = ensure_tools()["helm"]
    home = tmp_path_factory.mktemp("helm-home")
    kubeconfig = simulator.write_kubeconfig(home / "kubeconfig")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }

    def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        command = [str(binary), *args, "--kubeconfig", str(kubeconfig), "--namespace", "default"]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)

    return run


def release_status(helm, name: str) -> str:
    out = helm("status", name, "--output", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["info"]["status"]


def test_helm_install_wait_succeeds_on_simulated_workloads(helm, chart, simulator, record_property):
    began = time.monotonic()
    out = helm("install", "tiny", str(chart), "--wait", "--timeout", "60s")
    took = time.monotonic() - began
    record_property("helm_install_wait_seconds", round(took, 2))
    assert out.returncode == 0, out.stderr
    assert release_status(helm, "tiny") == "deployed"
    assert took < 30

    store, kinds = simulator.store, simulator.store.registry
    pods, _ = store.list(kinds.by_kind("v1", "Pod"), "default", "app.kubernetes.io/instance=tiny")
    assert sorted(p["status"]["phase"] for p in pods) == ["Running"] * 4
    names = {p["metadata"]["name"] for p in pods}
    assert {"tiny-db-0", "tiny-db-1"} <= names
    claim = store.get(kinds.by_kind("v1", "PersistentVolumeClaim"), "default", "data-tiny-db-0")
    assert claim["status"]["phase"] == "Bound"


def test_helm_install_wait_times_out_when_pods_never_get_ready(helm, chart, simulator):
    simulator.settings.faults.add(Fault("pods-never-ready", "default/broken"))
    try:
        out = helm(
            "install",
            "broken",
            str(chart),
            "--wait",
            "--timeout",
            "5s",
        )
    finally:
        simulator.settings.faults.clear("pods-never-ready")
    assert out.returncode != 0
    assert "context deadline exceeded" in out.stderr or "timed out" in out.stderr, out.stderr
    assert release_status(helm, "broken") == "failed"
