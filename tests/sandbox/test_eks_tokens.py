"""EKS tokens expire (about 15 minutes; in the sandbox 15 guide minutes at its time scale),
so nothing the platform runs may hold one: the Python client signs a fresh token for every
request, and helm's kubeconfig runs an exec credential plugin that client-go calls again
once the credential it returned has expired. The simulator checks EKS tokens as EKS does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from blueprint.catalogue import load_catalogue
from blueprint.spec import PlatformSpec
from sandbox.charts.server import ChartRepository
from sandbox.kube import auth
from sandbox.settings import Latency
from sandbox.tools import ensure_tools
from tasks.aws.addons import ensure_addon
from tasks.aws.clients import AwsClients
from tasks.aws.eks import ensure_cluster
from tasks.aws.iam import ensure_roles
from tasks.aws.nodegroups import ensure_node_groups
from tasks.aws.token import LIFETIME_SECONDS, exec_credential
from tasks.aws.vpc import ensure_network
from tasks.helm import write_kubeconfig
from tasks.kube import api_client, eks_kubeconfig, eks_token
from tests.sandbox.foundation_sandbox import FAST, Sandbox, new_clients, spec_named

pytestmark = pytest.mark.sandbox

DNS = load_catalogue().component("external-dns").chart
assert DNS is not None
SCALE = 0.1  # EKS tokens live 1.5 s (X-Amz-Date counts whole seconds)
REPO = Path(__file__).resolve().parents[2]
WAIT = {"Delay": 0.1, "MaxAttempts": 100}


@pytest.fixture(scope="module")
def cluster(sandbox: Sandbox) -> tuple[PlatformSpec, AwsClients]:
    """A cluster reached through EKS, with nodes for pods to run on."""
    spec, aws = spec_named("tokens"), new_clients(sandbox)
    network, roles = ensure_network(spec, aws), ensure_roles(spec, aws)
    made = ensure_cluster(spec, aws, network, roles, FAST)
    ensure_addon(spec, aws, "vpc-cni", made.version, {}, FAST)
    ensure_node_groups(spec, aws, network, roles.node_role_arn, FAST)
    return spec, aws


@pytest.fixture
def tokens_expire(sandbox: Sandbox, cluster) -> Iterator[float]:
    """The latency profile on: EKS tokens live 15 guide minutes at ``SCALE``, and pods take
    longer than that to become Ready. (Durations count from creation, so the cluster and
    its groups are waited for again.)"""
    spec, aws = cluster
    latency = sandbox.settings.latency
    latency.time_scale = SCALE
    latency.min_token_seconds = 0.0
    pod_ready = latency.minutes["pod_ready"]
    latency.minutes["pod_ready"] = 1.5 * auth.token_lifetime(latency) / SCALE
    eks, name = aws("eks"), spec.eks.cluster_name
    try:
        eks.get_waiter("cluster_active").wait(name=name, WaiterConfig=WAIT)
        for group in spec.node_groups:
            eks.get_waiter("nodegroup_active").wait(
                clusterName=name, nodegroupName=group, WaiterConfig=WAIT
            )
        yield auth.token_lifetime(latency)
    finally:
        latency.time_scale = 0.0
        latency.minutes["pod_ready"] = pod_ready
        latency.min_token_seconds = Latency().min_token_seconds


def test_the_simulator_checks_eks_tokens_as_eks_does(cluster):
    spec, aws = cluster
    latency = Latency(time_scale=SCALE, min_token_seconds=0.0)
    fresh = eks_token(aws, spec.eks.cluster_name)
    auth.check(f"Bearer {fresh}", latency)
    auth.check(None, latency)  # no credentials: the sandbox has no RBAC
    auth.check(f"Bearer {auth.SANDBOX_TOKEN}", latency)
    later = time.time() + auth.token_lifetime(latency) + 1
    with pytest.raises(auth.Unauthorized, match="EKS token expired"):
        auth.check(f"Bearer {fresh}", latency, now=later)
    for bad in ("Bearer k8s-aws-v1.bm90LWEtdXJs", "Bearer made-up", "Basic dXNlcjpwdw=="):
        with pytest.raises(auth.Unauthorized):
            auth.check(bad, latency)


def test_the_python_client_outlives_its_first_token(cluster, tokens_expire: float):
    spec, aws = cluster
    with api_client(aws, spec.eks.cluster_name, None) as api:
        core = k8s.CoreV1Api(api)
        core.list_namespace()
        time.sleep(tokens_expire + 0.5)
        core.list_namespace()  # signed again for this request

        api.configuration.refresh_api_key_hook = None  # what a client holding one token does
        time.sleep(tokens_expire + 0.5)
        with pytest.raises(ApiException) as refused:
            core.list_namespace()
        assert refused.value.status == 401


def test_helm_renews_its_credential_through_the_exec_plugin(
    cluster, tokens_expire: float, repository: ChartRepository, tmp_path: Path
):
    """A helm --wait that outlasts a token: client-go asks the plugin again once the
    credential's expiration (14 of EKS's 15 minutes, at the run's pace) has passed."""
    spec, aws = cluster
    lifetime = LIFETIME_SECONDS * SCALE / 60
    config = write_kubeconfig(eks_kubeconfig(aws, spec.eks.cluster_name, lifetime), tmp_path)
    assert "k8s-aws-v1." not in config.read_text()  # no token that could go stale
    env = {**os.environ, **aws.environment(), "PYTHONPATH": str(REPO)}
    began = time.monotonic()
    installed = subprocess.run(
        [
            str(ensure_tools()["helm"]),
            "install",
            DNS.release,
            DNS.name,
            "--repo",
            repository.url,
            "--version",
            DNS.version,
            "--namespace",
            "tokens",
            "--create-namespace",
            "--wait",
            "--timeout",
            "60s",
            "--kubeconfig",
            str(config),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert installed.returncode == 0, installed.stderr
    assert time.monotonic() - began > tokens_expire  # it did outlive the first token

    # The same with one token written into the kubeconfig, as before: refused once stale.
    static = eks_kubeconfig(aws, spec.eks.cluster_name, lifetime)
    static["users"][0]["user"] = {"token": eks_token(aws, spec.eks.cluster_name)}
    stale = write_kubeconfig(static, tmp_path)
    time.sleep(tokens_expire + 0.5)
    listed = subprocess.run(
        [str(ensure_tools()["helm"]), "list", "-A", "--kubeconfig", str(stale)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert listed.returncode != 0 and "Unauthorized" in listed.stderr, listed.stderr


def test_the_exec_plugin_prints_an_exec_credential(cluster):
    spec, aws = cluster
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tasks.aws.token",
            "--cluster",
            spec.eks.cluster_name,
            "--region",
            aws.region,
            "--lifetime",
            "30",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **aws.environment(), "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    credential = json.loads(out.stdout)
    assert credential["kind"] == "ExecCredential"
    assert credential["status"]["token"].startswith("k8s-aws-v1.")
    auth.check(f"Bearer {credential['status']['token']}", Latency())
    assert set(exec_credential("t", 1)["status"]) == set(credential["status"])
