"""What the Kubernetes simulator learns from the local AWS: the EKS node groups and add-ons;
and what it makes there: the EBS volumes its CSI driver provisions.

The local AWS implements ``ClusterSource``; the simulator's node, add-on and claim
controllers use it, so neither side imports the other's internals.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol


class NodeGroupInfo(NamedTuple):
    cluster: str
    name: str
    instance_types: tuple[str, ...]
    capacity_type: str  # ON_DEMAND | SPOT
    desired_size: int
    labels: dict[str, str]
    taints: tuple[dict[str, str], ...]  # {"key", "value", "effect"} as in the EKS API
    network_ready: bool = True  # the cluster's CNI (vpc-cni add-on) is running


class AddonInfo(NamedTuple):
    cluster: str
    name: str  # vpc-cni | kube-proxy | coredns | aws-ebs-csi-driver | ...
    status: str  # CREATING | ACTIVE | DEGRADED | DELETING | ...


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


class NoCloudVolumes:
    """Volumes of a source without a cloud behind it: a claim's volume is the simulator's
    alone."""

    def create_volume(self, size_gib: int, tags: dict[str, str]) -> str | None:
        return None

    def delete_volume(self, volume_id: str) -> None:
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
