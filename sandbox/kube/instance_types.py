"""EC2 instance sizes for simulated nodes: vCPUs, memory and the pods the VPC CNI allows.

Max pods follow the EKS formula ENIs * (IPv4 addresses per ENI - 1) + 2; allocatable
subtracts the EKS AMI's kube-reserved CPU and memory and the kubelet eviction threshold.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    enis: int
    ips_per_eni: int
    arch: str  # amd64 | arm64

    @property
    def max_pods(self) -> int:
        return self.enis * (self.ips_per_eni - 1) + 2

    def capacity(self) -> dict[str, str]:
        return {
            "cpu": str(self.vcpus),
            "memory": f"{self.memory_mib * 1024}Ki",
            "pods": str(self.max_pods),
            "ephemeral-storage": "20959212Ki",  # the 20 GiB default node volume
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
        }

    def allocatable(self) -> dict[str, str]:
        reserved_mib = 255 + 11 * self.max_pods + 100  # kube-reserved + eviction threshold
        return {
            **self.capacity(),
            "cpu": f"{self.vcpus * 1000 - _reserved_millicores(self.vcpus)}m",
            "memory": f"{(self.memory_mib - reserved_mib) * 1024}Ki",
            "ephemeral-storage": "18242267924",
        }


def _reserved_millicores(vcpus: int) -> int:
    """6% of the first core, 1% of the second, 0.5% of the next two, 0.25% of the rest."""
    shares = [60, 10, 5, 5]
    return sum(shares[:vcpus]) + max(vcpus - 4, 0) * 25 // 10


# size -> (vCPUs, memory GiB, ENIs, IPv4 per ENI) of a family shape
_BURSTABLE = {
    "medium": (2, 4, 3, 6),
    "large": (2, 8, 3, 12),
    "xlarge": (4, 16, 4, 15),
    "2xlarge": (8, 32, 4, 15),
}
_T2 = {**_BURSTABLE, "xlarge": (4, 16, 3, 15), "2xlarge": (8, 32, 3, 15)}
_GENERAL = {"large": (2, 8, 3, 10), "xlarge": (4, 16, 4, 15), "2xlarge": (8, 32, 4, 15)}
_COMPUTE = {"large": (2, 4, 3, 10), "xlarge": (4, 8, 4, 15), "2xlarge": (8, 16, 4, 15)}
_MEMORY = {"large": (2, 16, 3, 10), "xlarge": (4, 32, 4, 15), "2xlarge": (8, 64, 4, 15)}
_MEDIUM_GRAVITON = {"medium": (1, 4, 2, 4)}  # m6g.medium and the like: one vCPU

FAMILIES: dict[str, tuple[str, dict[str, tuple[int, int, int, int]]]] = {
    "t2": ("amd64", _T2),
    "t3": ("amd64", _BURSTABLE),
    "t3a": ("amd64", _BURSTABLE),
    "t4g": ("arm64", _BURSTABLE),
    "m5": ("amd64", _GENERAL),
    "m5a": ("amd64", _GENERAL),
    "m6i": ("amd64", _GENERAL),
    "m7i": ("amd64", _GENERAL),
    "m6g": ("arm64", {**_MEDIUM_GRAVITON, **_GENERAL}),
    "m7g": ("arm64", {**_MEDIUM_GRAVITON, **_GENERAL}),
    "c5": ("amd64", _COMPUTE),
    "c6i": ("amd64", _COMPUTE),
    "c6g": ("arm64", {"medium": (1, 2, 2, 4), **_COMPUTE}),
    "r5": ("amd64", _MEMORY),
    "r6i": ("amd64", _MEMORY),
    "r6g": ("arm64", {"medium": (1, 8, 2, 4), **_MEMORY}),
}
DEFAULT = "t3.medium"  # what EKS picks when a node group names no instance type


def instance_type(name: str) -> InstanceType:
    """The named type; an unknown one gets the shape of the m5 size of that name (or t3.medium)."""
    family, _, size = (name or DEFAULT).partition(".")
    arch, sizes = FAMILIES.get(family, ("arm64" if family.endswith("g") else "amd64", {}))
    shape = sizes.get(size) or _GENERAL.get(size) or _BURSTABLE["medium"]
    vcpus, memory_gib, enis, ips = shape
    return InstanceType(name or DEFAULT, vcpus, memory_gib * 1024, enis, ips, arch)
