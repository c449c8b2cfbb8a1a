"""Admission webhooks on the simulated API server: a write that a webhook with failurePolicy
Fail must see is refused while the webhook's Service does not exist, as a real API server
refuses it; and the Tekton stand-in, installed where the product installed it before, shows
what that did to every Task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sandbox.charts.server import ChartRepository
from tests.sandbox.helm_cli import helm

pytestmark = pytest.mark.sandbox

GUARDED = "guarded"


def webhook_configuration(name: str, policy: str, namespace: str) -> dict:
    return {
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": f"{name}.example.test",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": policy,
                "clientConfig": {"service": {"name": "checker", "namespace": namespace}},
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["configmaps"],
                        "operations": ["CREATE", "UPDATE"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": GUARDED}},
            }
        ],
    }


def message(refused: ApiException) -> str:
    return json.loads(refused.body)["message"]


def config_map(name: str) -> dict:
    return {"metadata": {"name": name}, "data": {"a": "1"}}


def test_a_webhook_without_its_service_fails_the_writes_it_guards(api_client: client.ApiClient):
    core = client.CoreV1Api(api_client)
    admission = client.AdmissionregistrationV1Api(api_client)
    for namespace in (GUARDED, "elsewhere", "webhooks"):
        core.create_namespace({"metadata": {"name": namespace}})
    admission.create_validating_webhook_configuration(
        webhook_configuration("strict", "Fail", "webhooks")
    )
    admission.create_mutating_webhook_configuration(
        webhook_configuration("lenient", "Ignore", "nowhere")
    )

    with pytest.raises(ApiException) as refused:
        core.create_namespaced_config_map(GUARDED, config_map("first"))
    assert refused.value.status == 500
    assert 'failed calling webhook "strict.example.test"' in message(refused.value)
    assert 'service "checker" not found' in message(refused.value)
    core.create_namespaced_config_map("elsewhere", config_map("outside"))  # not selected
    core.create_namespaced_secret(GUARDED, {"metadata": {"name": "s"}})  # not in its rules

    core.create_namespaced_service(
        "webhooks", {"metadata": {"name": "checker"}, "spec": {"ports": [{"port": 443}]}}
    )
    core.create_namespaced_config_map(GUARDED, config_map("first"))  # the webhook answers
    core.patch_namespaced_config_map("first", GUARDED, {"data": {"a": "2"}})
    core.delete_namespaced_service("checker", "webhooks", _preload_content=False)
    with pytest.raises(ApiException) as refused:  # an update is guarded too
        core.patch_namespaced_config_map("first", GUARDED, {"data": {"a": "3"}})
    assert refused.value.status == 500
    admission.delete_validating_webhook_configuration("strict", _preload_content=False)
    admission.delete_mutating_webhook_configuration("lenient", _preload_content=False)


def install_tekton(repository: ChartRepository, kubeconfig: Path, home: Path, namespace: str):
    helm(
        kubeconfig, home, "install", "tekton", "tekton-pipeline", "--repo", repository.url,
        "--version", "1.9.1", "--namespace", namespace, "--set", "namespace.create=false",
    )  # fmt: skip


TASK = {
    "apiVersion": "tekton.dev/v1",
    "kind": "Task",
    "metadata": {"name": "hello"},
    "spec": {"steps": [{"name": "say", "image": "busybox", "script": "echo hello"}]},
}


def test_tekton_outside_tekton_pipelines_refuses_every_task(
    api_client: client.ApiClient,
    kubeconfig: Path,
    repository: ChartRepository,
    tmp_path: Path,
):
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    core.create_namespace({"metadata": {"name": "argocd"}})
    install_tekton(repository, kubeconfig, tmp_path, "argocd")  # where GitOps' namespace is
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object("tekton.dev", "v1", "default", "tasks", TASK)
    assert refused.value.status == 500
    assert 'service "tekton-pipelines-webhook" not found' in message(refused.value)

    # Installed where its webhooks point, as the catalogue now says, a Task is taken.
    helm(kubeconfig, tmp_path, "uninstall", "tekton", "--namespace", "argocd")
    core.create_namespace({"metadata": {"name": "tekton-pipelines"}})
    install_tekton(repository, kubeconfig, tmp_path, "tekton-pipelines")
    created = custom.create_namespaced_custom_object("tekton.dev", "v1", "default", "tasks", TASK)
    assert created["metadata"]["name"] == "hello"
