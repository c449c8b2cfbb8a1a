"""Pods that run Prefect (or Python) run as local processes: their exit decides the pod,
they get EKS's IRSA environment, and they are inside their cluster's VPC."""

from __future__ import annotations

import base64
import json
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest

from sandbox.aws.access_entries import principal_of
from sandbox.aws.server import LocalAws
from sandbox.cluster import EndpointInfo, NodeGroupInfo, StaticClusterSource, endpoint_path
from sandbox.kube.objects import condition
from sandbox.kube.pod_commands import process_command
from sandbox.kube.server import KubeSimulator
from sandbox.processes import alive, group_members
from sandbox.settings import SandboxSettings
from tests.sandbox import waiting

pytestmark = pytest.mark.sandbox

# Processes start and controllers act in the background: longer than the default wait.
wait_for = partial(waiting.wait_for, timeout=30.0, every=0.05)

REGION = "us-east-1"
ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/SANDBOXTEST"
ROLE_NAME = "flow-runner"


def group(cluster: str, name: str) -> NodeGroupInfo:
    return NodeGroupInfo(cluster, name, ("t3.medium",), "ON_DEMAND", 1, {}, (), region=REGION)


class Source(StaticClusterSource):
    """Two clusters' node groups, the local AWS, and endpoint access a test can change."""

    def __init__(self, aws_url: str) -> None:
        super().__init__([group("demo", "workers"), group("other", "others")])
        self.aws_url = aws_url
        self.access = EndpointInfo(True, False, ("0.0.0.0/0",))

    def endpoint(self, region: str, cluster: str) -> EndpointInfo | None:
        return self.access

    def oidc_issuer(self, region: str, cluster: str) -> str | None:
        return ISSUER if cluster == "demo" else None

    def aws_endpoint(self) -> str | None:
        return self.aws_url


@dataclass
class Cluster:
    aws: LocalAws
    source: Source
    kube: KubeSimulator

    def create(self, resource: str, obj: dict, namespace: str = "default") -> dict:
        rt = self.kube.store.registry.by_path(*_GROUPS[resource], resource)
        obj.setdefault("metadata", {}).setdefault("namespace", namespace)
        return self.kube.store.create(rt, obj)

    def get(self, resource: str, name: str, namespace: str = "default") -> dict | None:
        rt = self.kube.store.registry.by_path(*_GROUPS[resource], resource)
        return self.kube.store.get(rt, namespace, name)

    def delete(self, resource: str, name: str, namespace: str = "default") -> None:
        rt = self.kube.store.registry.by_path(*_GROUPS[resource], resource)
        self.kube.store.delete(rt, namespace, name)

    def job_pods(self, job: str) -> list[dict]:
        rt = self.kube.store.registry.by_path("", "v1", "pods")
        return self.kube.store.list(rt, "default", label_selector=f"job-name={job}")[0]

    def log(self, pod: str) -> str:
        url = f"{self.kube.url}/api/v1/namespaces/default/pods/{pod}/log"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.read().decode()


_GROUPS = {
    "pods": ("", "v1"),
    "secrets": ("", "v1"),
    "configmaps": ("", "v1"),
    "serviceaccounts": ("", "v1"),
    "jobs": ("batch", "v1"),
    "deployments": ("apps", "v1"),
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with LocalAws(SandboxSettings()) as aws:
        source = Source(aws.url)
        work = tmp_path_factory.mktemp("pods")
        with KubeSimulator(SandboxSettings(), source, work_dir=work) as kube:
            wait_for(lambda: len(kube.store.list(_nodes(kube))[0]) == 2, what="nodes")
            yield Cluster(aws, source, kube)


def _nodes(kube: KubeSimulator):
    return kube.store.registry.by_path("", "v1", "nodes")


def job(name: str, container: dict, backoff_limit: int = 0, **spec: Any) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "run", "image": "platform:latest", **container}],
                    **spec,
                }
            },
        },
    }


def finished(cluster: Cluster, name: str) -> dict | None:
    found = cluster.get("jobs", name)
    for kind in ("Complete", "Failed"):
        if found and condition((found.get("status") or {}).get("conditions"), kind):
            return found
    return None


def python(script: str) -> dict:
    return {"command": ["python", "-c", script]}


# -- which containers run --------------------------------------------------------------


def test_prefect_commands_behind_an_entrypoint_run_as_the_sandboxs_python():
    worker = {
        "command": ["/usr/bin/tini", "-g", "--", "/opt/prefect/entrypoint.sh"],
        "args": ["prefect", "worker", "start", "--type", "kubernetes", "--pool", "p"],
    }
    assert process_command(worker) == [
        sys.executable,
        "-m",
        "prefect",
        "worker",
        "start",
        "--type",
        "kubernetes",
        "--pool",
        "p",
    ]
    flow_run = {"args": ["prefect", "flow-run", "execute"]}
    assert process_command(flow_run) == [sys.executable, "-m", "prefect", "flow-run", "execute"]
    assert process_command({"command": ["python3", "x.py"]}) == [sys.executable, "x.py"]
    assert process_command({"image": "nginx"}) is None
    assert process_command({"command": ["/bin/sh", "-c", "prefect version"]}) is None


# -- run to completion -------------------------------------------------------------------


def test_a_prefect_job_runs_its_command_and_completes_with_its_output(cluster: Cluster):
    container = {"command": ["tini", "--"], "args": ["prefect", "version"]}
    cluster.create("jobs", job("version", container))
    done = wait_for(lambda: finished(cluster, "version"), what="the job")
    assert condition(done["status"]["conditions"], "Complete")["status"] == "True"
    (pod,) = cluster.job_pods("version")
    assert pod["status"]["phase"] == "Succeeded"
    state = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (state["exitCode"], state["reason"]) == (0, "Completed")
    assert "Version:" in cluster.log(pod["metadata"]["name"])


def test_a_failing_pod_fails_and_its_job_stops_at_the_backoff_limit(cluster: Cluster):
    cluster.create("jobs", job("fails", python("import sys; sys.exit(3)"), backoff_limit=1))
    done = wait_for(lambda: finished(cluster, "fails"), what="the job")
    failed = condition(done["status"]["conditions"], "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "BackoffLimitExceeded")
    assert done["status"]["failed"] == 2
    pods = cluster.job_pods("fails")
    assert [p["status"]["phase"] for p in pods] == ["Failed", "Failed"]
    state = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (state["exitCode"], state["reason"]) == (3, "Error")


# -- long-running pods ----------------------------------------------------------------------


def test_an_exiting_process_restarts_and_a_deleted_pod_stops_its_process(cluster: Cluster):
    cluster.create(
        "pods",
        {
            "metadata": {"name": "blinks"},
            "spec": {"containers": [{"name": "c", **python("import time; time.sleep(0.3)")}]},
        },
    )

    def restarted() -> dict | None:
        pod = cluster.get("pods", "blinks")
        statuses = (pod or {}).get("status", {}).get("containerStatuses") or [{}]
        return statuses[0] if statuses[0].get("restartCount", 0) >= 1 else None

    status = wait_for(restarted, what="a restart")
    assert status["lastState"]["terminated"]["exitCode"] == 0

    cluster.create(
        "pods",
        {
            "metadata": {"name": "sleeper"},
            "spec": {"containers": [{"name": "c", **python("import time; time.sleep(120)")}]},
        },
    )
    pod = wait_for(lambda: _ready(cluster.get("pods", "sleeper")), what="the sleeper to be Ready")
    run = cluster.kube.runtime.get(pod["metadata"]["uid"], "c")
    assert run is not None and run.process is not None
    pid = run.process.pid
    assert alive(pid)
    cluster.delete("pods", "sleeper")
    wait_for(lambda: not group_members(pid), timeout=10, what="the process to stop")


def test_deleting_a_job_stops_its_pods_processes(cluster: Cluster):
    cluster.create("jobs", job("long", python("import time; time.sleep(120)")))
    pod = wait_for(lambda: [p for p in cluster.job_pods("long") if _ready(p)], what="Ready")[0]
    run = cluster.kube.runtime.get(pod["metadata"]["uid"], "run")
    assert run is not None and run.process is not None and alive(run.process.pid)
    cluster.delete("jobs", "long")  # its pods go with it
    wait_for(lambda: not group_members(run.process.pid), timeout=10, what="the process to stop")
    assert not cluster.job_pods("long")


def _ready(pod: dict | None) -> dict | None:
    found = condition(((pod or {}).get("status") or {}).get("conditions"), "Ready")
    return pod if found and found["status"] == "True" else None


def test_stopping_the_simulator_leaves_no_process_behind(tmp_path: Path):
    source = StaticClusterSource([group("demo", "workers")])
    kube = KubeSimulator(SandboxSettings(), source, work_dir=tmp_path / "pods").start()
    try:
        rt = kube.store.registry.by_path("", "v1", "pods")
        script = "import subprocess, time; subprocess.Popen(['sleep', '120']); time.sleep(120)"
        kube.store.create(
            rt,
            {
                "metadata": {"name": "p", "namespace": "default"},
                "spec": {"containers": [{"name": "c", **python(script)}]},
            },
        )
        pod = wait_for(lambda: _ready(kube.store.get(rt, "default", "p")), what="Ready")
        run = kube.runtime.get(pod["metadata"]["uid"], "c")
        assert run is not None and run.process is not None
        pid = run.process.pid
        wait_for(lambda: len(group_members(pid)) == 2, what="the child process")
    finally:
        kube.stop()
    assert not group_members(pid)


# -- the environment EKS gives a pod ---------------------------------------------------------

ENV_SCRIPT = """
import json, os, boto3
sts = boto3.client("sts")
identity = sts.get_caller_identity()
key = boto3.Session().get_credentials().access_key
names = ["GREETING", "SHAPE", "POD", "NAMESPACE", "ACCOUNT", "NODE", "POD_IP", "PASSWORD", "COLOUR",
         "MISSING", "HOME", "KUBECONFIG", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
         "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_STS_REGIONAL_ENDPOINTS", "AWS_ENDPOINT_URL",
         "KUBERNETES_SERVICE_HOST"]
token = open(os.environ["AWS_WEB_IDENTITY_TOKEN_FILE"]).read()
print(json.dumps({"env": {n: os.environ.get(n) for n in names}, "arn": identity["Arn"],
                  "key": key, "token": token, "cwd": os.getcwd()}))
"""


def test_a_pod_of_an_irsa_service_account_assumes_its_role_through_the_local_sts(
    cluster: Cluster,
):
    iam = boto3.client("iam", **_aws(cluster))
    trust = {"Version": "2012-10-17", "Statement": []}
    role = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
    role_arn = role["Role"]["Arn"]
    cluster.create(
        "serviceaccounts",
        {
            "metadata": {
                "name": "runner",
                "annotations": {"eks.amazonaws.com/role-arn": role_arn},
            }
        },
    )
    cluster.create("secrets", {"metadata": {"name": "s"}, "stringData": {"password": "pw"}})
    cluster.create("configmaps", {"metadata": {"name": "c"}, "data": {"colour": "blue"}})
    cluster.create("configmaps", {"metadata": {"name": "all"}, "data": {"SHAPE": "round"}})
    env = [
        {"name": "GREETING", "value": "hello"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "ACCOUNT", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
        {"name": "COLOUR", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "colour"}}},
        {
            "name": "MISSING",
            "valueFrom": {"configMapKeyRef": {"name": "c", "key": "no", "optional": True}},
        },
    ]
    container = {**python(ENV_SCRIPT), "env": env, "envFrom": [{"configMapRef": {"name": "all"}}]}
    cluster.create(
        "jobs",
        job(
            "env",
            container,
            serviceAccountName="runner",
            nodeSelector={"eks.amazonaws.com/nodegroup": "workers"},
        ),
    )
    done = wait_for(lambda: finished(cluster, "env"), what="the job")
    (pod,) = cluster.job_pods("env")
    printed = cluster.log(pod["metadata"]["name"])
    assert condition(done["status"]["conditions"], "Complete"), printed
    seen = json.loads(printed.strip().splitlines()[-1])
    folder = seen["cwd"]
    assert seen["env"] == {
        "GREETING": "hello",
        "SHAPE": "round",
        "POD": pod["metadata"]["name"],
        "NAMESPACE": "default",
        "ACCOUNT": "runner",
        "NODE": pod["spec"]["nodeName"],
        "POD_IP": pod["status"]["podIP"],
        "PASSWORD": "pw",
        "COLOUR": "blue",
        "MISSING": None,
        "HOME": folder,
        "KUBECONFIG": f"{folder}/kubeconfig",
        "AWS_ROLE_ARN": role_arn,
        "AWS_WEB_IDENTITY_TOKEN_FILE": f"{folder}/eks.amazonaws.com/serviceaccount/token",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_STS_REGIONAL_ENDPOINTS": "regional",
        "AWS_ENDPOINT_URL": cluster.aws.url,
        "KUBERNETES_SERVICE_HOST": None,
    }
    assert seen["arn"].startswith(f"arn:aws:sts::{role_arn.split(':')[4]}:assumed-role/")
    assert principal_of(seen["key"], REGION) == role_arn  # as EKS's access entries see it
    claims = json.loads(_unpad(seen["token"].split(".")[1]))
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "system:serviceaccount:default:runner"
    assert claims["aud"] == ["sts.amazonaws.com"]


def test_a_missing_secret_holds_the_container_until_it_exists(cluster: Cluster):
    ref = {"secretKeyRef": {"name": "later", "key": "k"}}
    container = {**python("print('started')"), "env": [{"name": "K", "valueFrom": ref}]}
    cluster.create("jobs", job("waits", container))

    def waiting() -> dict | None:
        pods = cluster.job_pods("waits")
        statuses = (pods[0].get("status") or {}).get("containerStatuses") if pods else None
        return (statuses[0]["state"].get("waiting") or None) if statuses else None

    held = wait_for(waiting, what="the container to wait")
    assert held["reason"] == "CreateContainerConfigError"
    assert "later" in held["message"]
    assert cluster.get("jobs", "waits")["status"].get("succeeded") is None
    cluster.create("secrets", {"metadata": {"name": "later"}, "stringData": {"k": "v"}})
    done = wait_for(lambda: finished(cluster, "waits"), what="the job")
    assert condition(done["status"]["conditions"], "Complete")


def _aws(cluster: Cluster) -> dict[str, str]:
    return {
        "endpoint_url": cluster.aws.url,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }


def _unpad(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


# -- reach from inside the VPC ---------------------------------------------------------------

GET_SCRIPT = """
import os, sys, urllib.request
try:
    with urllib.request.urlopen(os.environ["URL"], timeout=5) as answer:
        print(answer.status, answer.read().decode()[:40])
except Exception as error:
    print("no answer:", error)
    sys.exit(1)
"""


def test_a_private_only_endpoint_answers_pod_processes_of_its_cluster_alone(cluster: Cluster):
    cluster.source.access = EndpointInfo(public=False, private=True, public_cidrs=())
    url = cluster.kube.url + endpoint_path(REGION, "demo") + "/version"
    try:
        with pytest.raises(OSError):  # the runner outside: no answer
            urllib.request.urlopen(url, timeout=5)
        for name, node_group, outcome in (
            ("inside", "workers", "Complete"),
            ("elsewhere", "others", "Failed"),  # another cluster's VPC
        ):
            container = {**python(GET_SCRIPT), "env": [{"name": "URL", "value": url}]}
            selector = {"eks.amazonaws.com/nodegroup": node_group}
            cluster.create("jobs", job(name, container, nodeSelector=selector))
            done = wait_for(lambda name=name: finished(cluster, name), what=name)
            (pod,) = cluster.job_pods(name)
            printed = cluster.log(pod["metadata"]["name"])
            assert condition(done["status"]["conditions"], outcome), printed
            assert printed.startswith("200") == (outcome == "Complete"), printed
    finally:
        cluster.source.access = EndpointInfo(True, False, ("0.0.0.0/0",))
