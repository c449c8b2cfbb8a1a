"""A local AWS and a Kubernetes API simulator in this process, wired as EKS wires them:
what the foundation's tasks run against in the sandbox tier."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blocks.target import sandbox_target
from blueprint.loader import load_spec, load_spec_data, validate_spec
from blueprint.pace import Pace
from blueprint.spec import PlatformSpec
from sandbox.aws.server import LocalAws
from sandbox.kube.server import KubeSimulator
from sandbox.settings import SandboxSettings
from tasks.aws.clients import AwsClients

# Short polls and budgets: the local control planes answer at once (latency off).
FAST = Pace(time_scale=0.05, min_budget=10.0)


@dataclass
class Sandbox:
    aws: LocalAws
    kube: KubeSimulator
    settings: SandboxSettings
    kubeconfig: Path

    def endpoints(self) -> dict[str, Any]:
        return {
            "aws_endpoint_url": self.aws.url,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "kubeconfig": str(self.kubeconfig),
            "chart_repository": None,
        }

    def calls(self, operation: str) -> int:
        """How often the local AWS answered ``service:Operation`` so far."""
        return self.aws.calls().get(operation, 0)


def spec_named(name: str, **eks: Any) -> PlatformSpec:
    """The sandbox spec under another platform name and cluster (its own resources)."""
    data = load_spec_data("sandbox")
    data["platform"]["name"] = name
    data["eks"]["cluster_name"] = f"{name}-cluster"
    data["eks"].update(eks)
    return validate_spec(data)


def new_clients(sandbox: Sandbox) -> AwsClients:
    region = load_spec("sandbox").platform.region
    target = sandbox_target("sandbox", region, sandbox.endpoints(), time_scale=FAST.time_scale)
    return AwsClients(target.aws_credentials, target.region)


@contextmanager
def running_sandbox(folder: Path) -> Iterator[Sandbox]:
    settings = SandboxSettings()
    with LocalAws(settings) as aws:
        kube = KubeSimulator(settings, cluster_source=aws.cluster_source(), tls=True).start()
        try:
            aws.kube_url = kube.url  # DescribeCluster reports the simulator as endpoint
            aws.kube_ca_data = kube.ca_data
            yield Sandbox(aws, kube, settings, kube.write_kubeconfig(folder / "config"))
        finally:
            kube.stop()
