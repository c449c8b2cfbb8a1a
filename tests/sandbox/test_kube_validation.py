"""The simulator validates what is written as an API server of its version does, and says so
in its OpenAPI: helm and kubectl then leave validation to it, with nothing switched off."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sandbox.kube.server import KubeSimulator
from sandbox.tools import ensure_tools

pytestmark = pytest.mark.sandbox


def deployment(name: str, replicas: Any = 1, **spec_extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
            **spec_extra,
        },
    }


def request(
    kube_api: KubeSimulator, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    """A raw request: (status, headers, decoded body)."""
    data = json.dumps(body).encode() if body is not None else None
    sent = urllib.request.Request(
        kube_api.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(sent, timeout=10) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_openapi_v3_tells_clients_the_server_validates_fields(kube_api: KubeSimulator):
    root = request(kube_api, "GET", "/openapi/v3")[2]
    assert "apis/apps/v1" in root["paths"] and "api/v1" in root["paths"]
    doc = request(kube_api, "GET", root["paths"]["apis/apps/v1"]["serverRelativeURL"])[2]
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert {"name": "fieldValidation", "in": "query"}.items() <= patch["parameters"][0].items()


DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def test_a_value_of_the_wrong_type_is_rejected_naming_the_field(kube_api: KubeSimulator):
    status, _, body = request(kube_api, "POST", DEPLOYMENTS, deployment("typed", replicas="3"))
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["message"].startswith('Deployment.apps "typed" is invalid: spec.replicas: ')


def test_a_required_field_left_out_is_rejected(kube_api: KubeSimulator):
    broken = deployment("nameless")
    del broken["spec"]["template"]["spec"]["containers"][0]["name"]
    status, _, body = request(kube_api, "POST", DEPLOYMENTS, broken)
    assert status == 422
    assert "spec.template.spec.containers[0]: " in body["message"]
    assert "'name' is a required property" in body["message"]


def test_unknown_fields_follow_the_field_validation_directive(kube_api: KubeSimulator):
    def post(name: str, directive: str | None) -> tuple[int, dict[str, str], Any]:
        query = f"?fieldValidation={directive}" if directive else ""
        return request(kube_api, "POST", DEPLOYMENTS + query, deployment(name, bogus=True))

    status, _, body = post("strict", "Strict")
    assert status == 400
    assert body["message"] == 'strict decoding error: unknown field "spec.bogus"'
    status, headers, _ = post("warned", None)
    assert status == 201 and 'unknown field "spec.bogus"' in headers["Warning"]
    status, headers, _ = post("ignored", "Ignore")
    assert status == 201 and "Warning" not in headers


def test_a_patch_is_validated_as_the_object_it_makes(kube_api: KubeSimulator):
    assert request(kube_api, "POST", DEPLOYMENTS, deployment("patched"))[0] == 201
    patch = json.dumps({"spec": {"replicas": "many"}}).encode()
    sent = urllib.request.Request(
        f"{kube_api.url}{DEPLOYMENTS}/patched",
        data=patch,
        method="PATCH",
        headers={"Content-Type": "application/merge-patch+json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(sent, timeout=10)
    assert refused.value.code == 422
    assert request(kube_api, "GET", f"{DEPLOYMENTS}/patched")[2]["spec"]["replicas"] == 1


CHART = {
    "Chart.yaml": "apiVersion: v2\nname: checked\nversion: 0.1.0\n",
    "values.yaml": "replicas: 1\n",
    "templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: checked}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: checked}}
  template:
    metadata: {labels: {app: checked}}
    spec:
      containers: [{name: c, image: nginx}]
""",
}


def test_helm_without_switching_validation_off(
    kube_api: KubeSimulator, kubeconfig: Path, tmp_path: Path
):
    chart = tmp_path / "checked"
    for name, text in CHART.items():
        (chart / name).parent.mkdir(parents=True, exist_ok=True)
        (chart / name).write_text(text)
    helm = str(ensure_tools()["helm"])
    env = {**os.environ, "HOME": str(tmp_path), "HELM_CACHE_HOME": str(tmp_path / "cache")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [helm, *args, "--kubeconfig", str(kubeconfig)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    # --create-namespace validates the Namespace too: it used to need validation off.
    installed = run("install", "checked", str(chart), "-n", "made-by-helm", "--create-namespace")
    assert installed.returncode == 0, installed.stderr
    refused = run("upgrade", "checked", str(chart), "-n", "made-by-helm", "--set", "replicas=x")
    assert refused.returncode != 0
    assert 'Deployment.apps "checked" is invalid: spec.replicas' in refused.stderr
