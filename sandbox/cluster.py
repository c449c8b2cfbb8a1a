"""What the Kubernetes simulator learns from the local AWS: the EKS node groups, add-ons,
endpoints, access entries and OIDC issuers, and where pods reach AWS; and what it makes
there: the EBS volumes its CSI driver provisions.

The local AWS implements ``ClusterSource``; the simulator's node, add-on and claim
controllers use it, so neither side imports the other's internals.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple, Protocol

# Where every request to the simulator appears to come from: a runner outside any VPC, on
# the internet (TEST-NET-3). Only the processes of pods (sandbox/kube/peers.py) are inside a
# cluster's VPC.
RUNNER_ADDRESS = "203.0.113.10"
DEFAULT_REGION = "us-east-1"

# The simulator serves every cluster; an EKS endpoint names its cluster in the path, the way
# a real endpoint's host name does.
_ENDPOINT = re.compile(r"^/eks/(?P<region>[a-z0-9-]+)/(?P<cluster>[^/]+)(?P<rest>/.*)?$")


def endpoint_path(region: str, cluster: str) -> str:
    """The path under the simulator's URL that is the cluster's EKS endpoint."""
    return f"/eks/{region}/{cluster}"


def split_endpoint(path: str) -> tuple[tuple[str, str] | None, str]:
    """((region, cluster) or None, the API path) of a request's path."""
    match = _ENDPOINT.match(path)
    if match is None:
        return None, path
    return (match["region"], match["cluster"]), match["rest"] or "/"


class NodeGroupInfo(NamedTuple):
    cluster: str
    name: str
    instance_types: tuple[str, ...]
    capacity_type: str  # ON_DEMAND | SPOT
    desired_size: int
    labels: dict[str, str]
    taints: tuple[dict[str, str], ...]  # {"key", "value", "effect"} as in the EKS API
    network_ready: bool = True  # the cluster's CNI (vpc-cni add-on) is running
    region: str = DEFAULT_REGION  # the cluster's


class AddonInfo(NamedTuple):
    cluster: str
    name: str  # vpc-cni | kube-proxy | coredns | aws-ebs-csi-driver | ...
    status: str  # CREATING | ACTIVE | DEGRADED | DELETING | ...


class EndpointInfo(NamedTuple):
    """A cluster's API endpoint access, as DescribeCluster reports it."""

    public: bool
    private: bool
    public_cidrs: tuple[str, ...]

    def reachable_from_outside(self) -> bool:
        """Whether a runner outside the VPC, at ``RUNNER_ADDRESS``, can connect."""
        address = ipaddress.ip_address(RUNNER_ADDRESS)
        return self.public and any(
            address in ipaddress.ip_network(cidr, strict=False) for cidr in self.public_cidrs
        )

    def reachable_from(self, inside_vpc: bool) -> bool:
        """Whether a client connects: inside the cluster's VPC the endpoint's private
        address answers when private access is on, whatever the public settings; a client
        elsewhere is the runner outside."""
        return (inside_vpc and self.private) or self.reachable_from_outside()


class AccessPolicy(NamedTuple):
    name: str  # AmazonEKSClusterAdminPolicy | AmazonEKSAdminPolicy | ...EditPolicy | ...ViewPolicy
    namespaces: tuple[str, ...]  # empty: the whole cluster

    def allows(self, method: str, namespace: str | None) -> bool:
        if self.namespaces and namespace not in self.namespaces:
            return False
        return self.name != "AmazonEKSViewPolicy" or method in ("GET", "HEAD")


class AccessGrant(NamedTuple):
    """What an IAM principal may do in a cluster, from its access entry."""

    principal: str
    entry: bool  # it has one: the API authenticates it
    policies: tuple[AccessPolicy, ...] = ()

    def allows(self, method: str, namespace: str | None) -> bool:
        return any(p.allows(method, namespace) for p in self.policies)


class ClusterSource(Protocol):
    def node_groups(self) -> list[NodeGroupInfo]:
        """Node groups whose status is ACTIVE (latency elapsed), across clusters."""
        ...

    def addons(self) -> list[AddonInfo]:
        """Add-ons of every cluster with their current (effective) status."""
        ...

    def create_volume(self, size_gib: int, tags: dict[str, str]) -> str | None:
        """An EBS volume for a claim, in the cluster's region; None without a cluster."""
        ...

    def delete_volume(self, volume_id: str) -> None:
        """Delete a volume ``create_volume`` made; one already gone is no error."""
        ...

    def access(self, region: str, cluster: str, access_key: str) -> AccessGrant:
        """What the principal of an EKS token's access key may do in the cluster."""
        ...

    def endpoint(self, region: str, cluster: str) -> EndpointInfo | None:
        """The cluster's endpoint access; None when it has no endpoint (not ACTIVE, gone)."""
        ...

    def oidc_issuer(self, region: str, cluster: str) -> str | None:
        """The cluster's OIDC issuer URL (what its service account tokens name as ``iss``)."""
        ...

    def aws_endpoint(self) -> str | None:
        """The URL at which every process in the sandbox reaches AWS; None without one."""
        ...


class NoCloudVolumes:
    """What a source without a cloud behind it answers: a claim's volume is the simulator's
    alone, and pods have no AWS to reach."""

    def create_volume(self, size_gib: int, tags: dict[str, str]) -> str | None:
        return None

    def delete_volume(self, volume_id: str) -> None:
        return None

    def oidc_issuer(self, region: str, cluster: str) -> str | None:
        return None

    def aws_endpoint(self) -> str | None:
        return None


class StaticClusterSource(NoCloudVolumes):
    """A fixed source, for tests and for a simulator started without a local AWS."""

    def __init__(self, node_groups=(), addons=()):
        self._node_groups = list(node_groups)
        self._addons = list(addons)

    def node_groups(self) -> list[NodeGroupInfo]:
        return list(self._node_groups)

    def addons(self) -> list[AddonInfo]:
        return list(self._addons)

    def access(self, region: str, cluster: str, access_key: str) -> AccessGrant:
        return AccessGrant(access_key, entry=True, policies=(FULL,))

    def endpoint(self, region: str, cluster: str) -> EndpointInfo | None:
        return EndpointInfo(True, False, ("0.0.0.0/0",))


FULL = AccessPolicy("AmazonEKSClusterAdminPolicy", ())
