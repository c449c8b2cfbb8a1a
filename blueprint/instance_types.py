"""EC2 instance types the blueprint knows, with what node-group validation needs.

A node group uses one AMI type, so its instance types must share an architecture; a
diversified SPOT group should use types of the same size so scaling stays predictable.
Mac and high-memory metal types are not sold as Spot capacity.
"""

from __future__ import annotations

from typing import NamedTuple


class InstanceType(NamedTuple):
    vcpu: int
    memory_gib: float
    arch: str  # x86_64 | arm64
    spot: bool = True


INSTANCE_TYPES: dict[str, InstanceType] = {
    "t2.medium": InstanceType(2, 4, "x86_64"),
    "t2.large": InstanceType(2, 8, "x86_64"),
    "t2.xlarge": InstanceType(4, 16, "x86_64"),
    "t3.small": InstanceType(2, 2, "x86_64"),
    "t3.medium": InstanceType(2, 4, "x86_64"),
    "t3.large": InstanceType(2, 8, "x86_64"),
    "t3.xlarge": InstanceType(4, 16, "x86_64"),
    "t3.2xlarge": InstanceType(8, 32, "x86_64"),
    "t3a.medium": InstanceType(2, 4, "x86_64"),
    "t3a.large": InstanceType(2, 8, "x86_64"),
    "t3a.xlarge": InstanceType(4, 16, "x86_64"),
    "t4g.medium": InstanceType(2, 4, "arm64"),
    "t4g.large": InstanceType(2, 8, "arm64"),
    "m5.large": InstanceType(2, 8, "x86_64"),
    "m5.xlarge": InstanceType(4, 16, "x86_64"),
    "m5a.large": InstanceType(2, 8, "x86_64"),
    "m6i.large": InstanceType(2, 8, "x86_64"),
    "m6i.xlarge": InstanceType(4, 16, "x86_64"),
    "m6g.large": InstanceType(2, 8, "arm64"),
    "m7i.large": InstanceType(2, 8, "x86_64"),
    "c5.large": InstanceType(2, 4, "x86_64"),
    "c5.xlarge": InstanceType(4, 8, "x86_64"),
    "c6i.large": InstanceType(2, 4, "x86_64"),
    "r5.large": InstanceType(2, 16, "x86_64"),
    "r5.xlarge": InstanceType(4, 32, "x86_64"),
    "r6i.large": InstanceType(2, 16, "x86_64"),
    "mac1.metal": InstanceType(12, 32, "x86_64", spot=False),
    "mac2.metal": InstanceType(8, 16, "arm64", spot=False),
    "u-6tb1.metal": InstanceType(448, 6144, "x86_64", spot=False),
}
