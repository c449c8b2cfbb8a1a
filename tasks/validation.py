"""The guide's foundation validation, each check reported by name with its measured value.

kubectl get nodes --no-headers | wc -l                                  >= 3
kubectl get pods -n kube-system --field-selector=status.phase=Running   >= 10
kubectl cluster-info                                                    answers
aws eks describe-cluster --query cluster.status                        ACTIVE
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kubernetes import client as k8s

from blueprint.spec import FoundationValidation
from tasks.aws.clients import AwsClients
from tasks.aws.eks import describe_cluster


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: Any
    expected: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _guard(name: str, expected: str, measure) -> Check:
    """A check that cannot be measured fails with the reason as its value."""
    try:
        return measure()
    except Exception as exc:  # reported, not swallowed: the check fails with the cause
        return Check(name, False, f"error: {type(exc).__name__}: {exc}", expected)


def foundation_checks(
    api: k8s.ApiClient, aws: AwsClients, cluster: str, limits: FoundationValidation
) -> list[Check]:
    core = k8s.CoreV1Api(api)

    def nodes() -> Check:
        ready = [
            n
            for n in core.list_node().items
            if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
        ]
        return Check(
            "nodes_ready", len(ready) >= limits.min_nodes, len(ready), f">= {limits.min_nodes}"
        )

    def pods() -> Check:
        running = core.list_namespaced_pod(
            "kube-system", field_selector="status.phase=Running"
        ).items
        wanted = limits.min_kube_system_running_pods
        return Check(
            "kube_system_running_pods", len(running) >= wanted, len(running), f">= {wanted}"
        )

    def cluster_info() -> Check:
        version = k8s.VersionApi(api).get_code()
        return Check("cluster_info", True, version.git_version, "API answers /version")

    def status() -> Check:
        described = describe_cluster(aws, cluster) or {}
        value = described.get("status", "MISSING")
        return Check("eks_status", value == limits.cluster_status, value, limits.cluster_status)

    return [
        _guard("nodes_ready", f">= {limits.min_nodes}", nodes),
        _guard("kube_system_running_pods", f">= {limits.min_kube_system_running_pods}", pods),
        _guard("cluster_info", "API answers /version", cluster_info),
        _guard("eks_status", limits.cluster_status, status),
    ]
