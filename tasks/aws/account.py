"""What the account holds against what a run needs: ``platformctl plan --check-account``.

Read-only: the principal (STS GetCallerIdentity), each quota's applied value (Service
Quotas GetServiceQuota) and what is in use (Describe and List calls). What the platform
already owns (by its tags, its cluster's and buckets' names) counts as in use but not as
needed again: a run converges it rather than making another.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from blueprint.instance_types import INSTANCE_TYPES
from blueprint.quotas import (
    BUCKETS,
    EKS_CLUSTERS,
    ELASTIC_IPS,
    GATEWAY_ENDPOINTS,
    INTERNET_GATEWAYS,
    NAT_PER_ZONE,
    SECURITY_GROUPS,
    VPCS,
    QuotaNeed,
    quota_needs,
    vcpu_quota,
)
from blueprint.spec import PlatformSpec, bucket_name
from tasks.aws.clients import AwsClients
from tasks.aws.errors import AwsError, aws_call
from tasks.aws.identity import Identity, tag_dict

EKS_CLUSTER_TAG = "aws:eks:cluster-name"  # on the cluster security group EKS creates


@dataclass(frozen=True)
class Principal:
    account: str
    arn: str

    def to_json(self) -> dict[str, str]:
        return {"account": self.account, "arn": self.arn}


@dataclass(frozen=True)
class QuotaCheck:
    need: QuotaNeed
    in_use: int  # everything in the account (the zone, for a per-zone quota)
    ours: int  # of which the platform's own (a run reuses them)
    limit: float | None  # None: the quota could not be read (``note`` says why)
    note: str = ""

    @property
    def after_run(self) -> int:
        return self.in_use - self.ours + self.need.needed

    @property
    def at_most(self) -> int:
        return self.in_use - self.ours + self.need.at_most

    @property
    def status(self) -> str:
        if self.limit is None:
            return "unknown"
        if self.after_run > self.limit:
            return "short"
        if self.at_most > self.limit:
            return "short at max"
        return "OK"

    @property
    def short(self) -> bool:
        return self.status == "short"

    def to_json(self) -> dict[str, Any]:
        return {
            **self.need.to_json(),
            "in_use": self.in_use,
            "ours": self.ours,
            "limit": self.limit,
            "after_run": self.after_run,
            "status": self.status,
            "note": self.note,
        }


@dataclass(frozen=True)
class AccountCheck:
    principal: Principal
    region: str
    quotas: list[QuotaCheck]

    @property
    def short(self) -> list[QuotaCheck]:
        return [q for q in self.quotas if q.short]

    def to_json(self) -> dict[str, Any]:
        return {
            "principal": self.principal.to_json(),
            "region": self.region,
            "quotas": [q.to_json() for q in self.quotas],
            "short": [q.need.quota.name for q in self.short],
        }


def principal(aws: AwsClients) -> Principal:
    with aws_call("sts:GetCallerIdentity"):
        found = aws("sts").get_caller_identity()
    return Principal(found["Account"], found["Arn"])


def quota_limit(aws: AwsClients, service: str, code: str) -> tuple[float | None, str]:
    """The quota's applied value; None and the reason when Service Quotas has none."""
    try:
        with aws_call("service-quotas:GetServiceQuota"):
            found = aws("service-quotas").get_service_quota(ServiceCode=service, QuotaCode=code)
    except AwsError as exc:
        if exc.code in ("NoSuchResourceException", "IllegalArgumentException"):
            return None, f"{exc.code}: {exc.aws_message}"
        raise
    return float(found["Quota"]["Value"]), ""


class _Usage:
    """What is in use in the region, and how much of it is the platform's."""

    def __init__(self, spec: PlatformSpec, aws: AwsClients):
        self.spec, self.aws, self.me = spec, aws, Identity.of(spec)
        self.ec2 = aws("ec2")

    def _all(self, call: str, key: str, label: str, **params: Any) -> list[dict[str, Any]]:
        with aws_call(f"ec2:{label}"):
            pages = self.ec2.get_paginator(call).paginate(**params)
            return [item for page in pages for item in page[key]]

    def _counted(self, items: list[dict[str, Any]], ours: Callable[[dict], bool] | None = None):
        mine = ours or (lambda item: self.me.owns(item.get("Tags")))
        return len(items), sum(1 for item in items if mine(item))

    def vpcs(self) -> tuple[int, int]:
        return self._counted(self._all("describe_vpcs", "Vpcs", "DescribeVpcs"))

    def internet_gateways(self) -> tuple[int, int]:
        found = self._all(
            "describe_internet_gateways", "InternetGateways", "DescribeInternetGateways"
        )
        return self._counted(found)

    def elastic_ips(self) -> tuple[int, int]:
        with aws_call("ec2:DescribeAddresses"):
            found = self.ec2.describe_addresses()["Addresses"]
        return self._counted([a for a in found if a.get("Domain", "vpc") == "vpc"])

    def nat_per_zone(self) -> tuple[int, int]:
        """The fullest of the spec's zones: its NAT gateways, and the platform's among them."""
        nats = self._all(
            "describe_nat_gateways",
            "NatGateways",
            "DescribeNatGateways",
            Filters=[{"Name": "state", "Values": ["pending", "available"]}],
        )
        subnets = sorted({n["SubnetId"] for n in nats})
        zone_of: dict[str, str] = {}
        if subnets:
            with aws_call("ec2:DescribeSubnets"):
                found = self.ec2.describe_subnets(SubnetIds=subnets)["Subnets"]
            zone_of = {s["SubnetId"]: s["AvailabilityZone"] for s in found}
        counts: Counter[str] = Counter()
        ours: Counter[str] = Counter()
        for nat in nats:
            zone = zone_of.get(nat["SubnetId"], "")
            counts[zone] += 1
            ours[zone] += self.me.owns(nat.get("Tags"))
        zones = self.spec.network.availability_zones
        fullest = max(zones, key=lambda z: (counts[z] - ours[z], counts[z]))
        return counts[fullest], ours[fullest]

    def security_groups(self) -> tuple[int, int]:
        cluster = self.spec.eks.cluster_name

        def ours(group: dict[str, Any]) -> bool:
            tags = tag_dict(group.get("Tags"))
            return self.me.owns(tags) or tags.get(EKS_CLUSTER_TAG) == cluster

        found = self._all("describe_security_groups", "SecurityGroups", "DescribeSecurityGroups")
        return self._counted(found, ours)

    def gateway_endpoints(self) -> tuple[int, int]:
        found = self._all(
            "describe_vpc_endpoints",
            "VpcEndpoints",
            "DescribeVpcEndpoints",
            Filters=[
                {"Name": "vpc-endpoint-type", "Values": ["Gateway"]},
                {"Name": "vpc-endpoint-state", "Values": ["pending", "available"]},
            ],
        )
        return self._counted(found)

    def clusters(self) -> tuple[int, int]:
        with aws_call("eks:ListClusters"):
            pages = self.aws("eks").get_paginator("list_clusters").paginate()
            names = [name for page in pages for name in page["clusters"]]
        return len(names), int(self.spec.eks.cluster_name in names)

    def buckets(self) -> tuple[int, int]:
        with aws_call("s3:ListBuckets"):
            names = [b["Name"] for b in self.aws("s3").list_buckets().get("Buckets", [])]
        account = self.aws.account_id()
        mine = {bucket_name(self.spec, part, account) for part in ("mimir", "loki")}
        return len(names), len(mine & set(names))

    def vcpus(self) -> dict[str, tuple[int, int]]:
        """vCPUs of running instances per quota key (On-Demand or Spot by family class)."""
        reservations = self._all(
            "describe_instances",
            "Reservations",
            "DescribeInstances",
            Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}],
        )
        total: Counter[str] = Counter()
        ours: Counter[str] = Counter()
        for reservation in reservations:
            for instance in reservation.get("Instances", []):
                kind = instance["InstanceType"]
                market = "SPOT" if instance.get("InstanceLifecycle") == "spot" else "ON_DEMAND"
                quota = vcpu_quota(kind, market)
                if quota is None:
                    continue
                total[quota.key] += _vcpus(instance)
                if self.me.owns(instance.get("Tags")):
                    ours[quota.key] += _vcpus(instance)
        return {key: (total[key], ours[key]) for key in total}


def _vcpus(instance: dict[str, Any]) -> int:
    cpu = instance.get("CpuOptions") or {}
    if cpu.get("CoreCount"):
        return int(cpu["CoreCount"]) * int(cpu.get("ThreadsPerCore", 1))
    known = INSTANCE_TYPES.get(instance["InstanceType"])
    return known.vcpu if known else 0


def check_account(spec: PlatformSpec, aws: AwsClients) -> AccountCheck:
    """Every quota the spec needs: needed, in use, the platform's own, limit, status."""
    who = principal(aws)
    usage = _Usage(spec, aws)
    counters: dict[str, Callable[[], tuple[int, int]]] = {
        VPCS.key: usage.vpcs,
        INTERNET_GATEWAYS.key: usage.internet_gateways,
        NAT_PER_ZONE.key: usage.nat_per_zone,
        ELASTIC_IPS.key: usage.elastic_ips,
        SECURITY_GROUPS.key: usage.security_groups,
        GATEWAY_ENDPOINTS.key: usage.gateway_endpoints,
        EKS_CLUSTERS.key: usage.clusters,
        BUCKETS.key: usage.buckets,
    }
    vcpus: dict[str, tuple[int, int]] | None = None
    checks = []
    for need in quota_needs(spec):
        quota = need.quota
        if not quota.code:  # a family whose quota the platform does not know
            checks.append(QuotaCheck(need, 0, 0, None, "check it in the Service Quotas console"))
            continue
        if quota.key in counters:
            in_use, ours = counters[quota.key]()
        else:
            vcpus = usage.vcpus() if vcpus is None else vcpus
            in_use, ours = vcpus.get(quota.key, (0, 0))
        limit, note = quota_limit(aws, quota.service, quota.code)
        checks.append(QuotaCheck(need, in_use, ours, limit, note))
    return AccountCheck(who, aws.region, checks)
