"""What a run needs from the AWS account: the service quotas it uses, counted from the spec.

Pure: the account's limits and usage are read by ``tasks/aws/account.py``; this module only
says which quotas the platform draws on and how much of each, so ``platformctl plan`` can
name them before anything is touched.

vCPU quotas are per instance family class and purchase option: the node groups' instance
types are counted in vCPUs (``blueprint/instance_types.py``) against the On-Demand or the
Spot quota of their class. ``needed`` is what the run launches (desired sizes); ``at_most``
is what the node groups may scale to (maximum sizes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from blueprint.instance_types import INSTANCE_TYPES
from blueprint.spec import PlatformSpec


@dataclass(frozen=True)
class Quota:
    service: str  # Service Quotas service code: ec2, vpc, eks, s3
    code: str  # quota code, e.g. L-1216C47A
    name: str  # as the Service Quotas console names it

    @property
    def key(self) -> str:
        return f"{self.service}/{self.code}"


VPCS = Quota("vpc", "L-F678F1CE", "VPCs per Region")
INTERNET_GATEWAYS = Quota("vpc", "L-A4707A72", "Internet gateways per Region")
NAT_PER_ZONE = Quota("vpc", "L-FE5A380F", "NAT gateways per Availability Zone")
SECURITY_GROUPS = Quota("vpc", "L-E79EC296", "VPC security groups per Region")
GATEWAY_ENDPOINTS = Quota("vpc", "L-1B52E74A", "Gateway VPC endpoints per Region")
ELASTIC_IPS = Quota("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs")
EKS_CLUSTERS = Quota("eks", "L-1194D53C", "Clusters")
BUCKETS = Quota("s3", "L-DC2B2D3D", "General purpose buckets")
ON_DEMAND_STANDARD = Quota(
    "ec2", "L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"
)
SPOT_STANDARD = Quota(
    "ec2", "L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests"
)
ON_DEMAND_HIGH_MEMORY = Quota("ec2", "L-43DA4232", "Running On-Demand High Memory instances")

# Instance family classes (the letters before the generation digit) and their vCPU quotas.
STANDARD_FAMILIES = frozenset("acdhimrtz")
VCPU_QUOTAS: dict[tuple[str, str], Quota] = {
    ("standard", "ON_DEMAND"): ON_DEMAND_STANDARD,
    ("standard", "SPOT"): SPOT_STANDARD,
    ("high-memory", "ON_DEMAND"): ON_DEMAND_HIGH_MEMORY,
}

EVERY_QUOTA = (
    VPCS,
    INTERNET_GATEWAYS,
    NAT_PER_ZONE,
    ELASTIC_IPS,
    SECURITY_GROUPS,
    GATEWAY_ENDPOINTS,
    EKS_CLUSTERS,
    ON_DEMAND_STANDARD,
    SPOT_STANDARD,
    ON_DEMAND_HIGH_MEMORY,
    BUCKETS,
)


@dataclass(frozen=True)
class QuotaNeed:
    quota: Quota
    needed: int  # used once the run is done (node groups at their desired sizes)
    at_most: int  # node groups at their maximum sizes; the same figure for the rest
    unit: str  # what is counted: "VPCs", "vCPUs", ...
    per: str  # "Region", "Availability Zone" or "account"
    why: str

    def to_json(self) -> dict[str, object]:
        return {
            "service": self.quota.service,
            "code": self.quota.code,
            "name": self.quota.name,
            "needed": self.needed,
            "at_most": self.at_most,
            "unit": self.unit,
            "per": self.per,
            "why": self.why,
        }


def family_class(instance_type: str) -> str:
    """``standard``, ``high-memory`` or the family itself (e.g. ``mac1``) when the platform
    knows no vCPU quota for it."""
    family = instance_type.split(".", 1)[0]
    if family.startswith("u-"):
        return "high-memory"
    letters = re.match(r"[a-z]+", family)
    if letters and len(letters[0]) == 1 and letters[0] in STANDARD_FAMILIES:
        return "standard"
    return family


def vcpu_quota(instance_type: str, capacity_type: str) -> Quota | None:
    return VCPU_QUOTAS.get((family_class(instance_type), capacity_type))


def quota_needs(spec: PlatformSpec) -> list[QuotaNeed]:
    """Every quota the platform draws on, with how much of it the spec needs."""
    zones = len(spec.network.availability_zones)
    nats = 1 if spec.network.nat_gateways == "single" else zones
    needs = [
        QuotaNeed(VPCS, 1, 1, "VPCs", "Region", "the platform's VPC"),
        QuotaNeed(INTERNET_GATEWAYS, 1, 1, "gateways", "Region", "the VPC's internet gateway"),
        QuotaNeed(
            NAT_PER_ZONE,
            1,
            1,
            "NAT gateways",
            "Availability Zone",
            f"NAT {spec.network.nat_gateways}: {nats} in {zones} zones, one per zone at most",
        ),
        QuotaNeed(ELASTIC_IPS, nats, nats, "addresses", "Region", "one per NAT gateway"),
        QuotaNeed(
            SECURITY_GROUPS,
            2,
            2,
            "groups",
            "Region",
            "the platform's shared group and the cluster security group EKS creates",
        ),
        QuotaNeed(GATEWAY_ENDPOINTS, 1, 1, "endpoints", "Region", "the S3 gateway endpoint"),
        QuotaNeed(EKS_CLUSTERS, 1, 1, "clusters", "Region", f"cluster {spec.eks.cluster_name}"),
    ]
    needs += _vcpu_needs(spec)
    needs.append(QuotaNeed(BUCKETS, 2, 2, "buckets", "account", "the Mimir and Loki buckets"))
    return needs


def _vcpu_needs(spec: PlatformSpec) -> list[QuotaNeed]:
    """vCPUs per quota: a group's instances counted at the largest of its types (a
    diversified group may get any of them)."""
    totals: dict[str, list] = {}  # quota key -> [quota or family, needed, at most, groups]
    for name, group in spec.node_groups.items():
        vcpu = max(INSTANCE_TYPES[t].vcpu for t in group.instance_types)
        quota = vcpu_quota(group.instance_types[0], group.capacity_type)
        key = quota.key if quota else f"{family_class(group.instance_types[0])}"
        entry = totals.setdefault(key, [quota, 0, 0, []])
        entry[1] += group.desired_size * vcpu
        entry[2] += group.max_size * vcpu
        entry[3].append(
            f"{name}: {group.desired_size}-{group.max_size} x {vcpu} vCPU "
            f"({', '.join(group.instance_types)} {group.capacity_type})"
        )
    needs = []
    for key, (quota, needed, at_most, groups) in totals.items():
        if quota is None:
            quota = Quota("ec2", "", f"vCPU quota of the {key} family (not known here)")
        needs.append(QuotaNeed(quota, needed, at_most, "vCPUs", "Region", "; ".join(groups)))
    return needs
