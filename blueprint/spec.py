"""The typed platform spec: every setting the guide names, with cross-field checks.

The defaults live in ``config/platform.yaml`` (the guide's values); these models hold no
values of their own beyond what a field's meaning makes obvious, so the YAML stays the one
place a reader looks for a number.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from blueprint.errors import reject
from blueprint.instance_types import INSTANCE_TYPES
from blueprint.units import (
    CpuQuantity,
    DnsLabel,
    Duration,
    MemoryQuantity,
    Percent,
    cpu_millis,
    duration_seconds,
    memory_bytes,
)

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)
EKS_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
ESSENTIAL_ADDONS = ("vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver")
# Add-ons a feature of the spec needs beyond the essential four.
FEATURE_ADDONS = {"snapshot-controller": "storage_class.snapshots (VolumeSnapshot API)"}
Workflow = Literal[
    "foundation",
    "ingress",
    "observability",
    "gitops",
    "security",
    "service-mesh",
    "data-services",
]
WORKFLOWS: tuple[str, ...] = get_args(Workflow)
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_K8S_VERSION = re.compile(r"^1\.\d{2}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class Model(BaseModel):
    """Base of every spec model: unknown fields are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- platform


class PlatformSettings(Model):
    name: DnsLabel = Field(
        description="Platform name; prefixes AWS resource names and tags what it owns"
    )
    environment: DnsLabel = Field(description="Environment name, set by the overlay in use")
    region: str = Field(description="AWS region, e.g. us-east-1")
    tags: dict[str, str] = Field(
        default_factory=dict, description="Extra tags put on every AWS resource"
    )
    bucket_namespace: DnsLabel | None = Field(
        default=None,
        description="Last part of every S3 bucket name, to make it unique in the world "
        "(bucket names are global); empty: the AWS account ID",
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError(f"{value!r} is not an AWS region name (e.g. us-east-1)")
        return value


class NetworkSettings(Model):
    vpc_cidr: str = Field(description="IPv4 CIDR of the VPC")
    availability_zones: list[str] = Field(
        min_length=2, description="Availability zones to spread subnets over (EKS needs >= 2)"
    )
    public_subnet_cidrs: list[str] = Field(
        description="One public subnet CIDR per zone, inside vpc_cidr (load balancers, NAT)"
    )
    private_subnet_cidrs: list[str] = Field(
        description="One private subnet CIDR per zone, inside vpc_cidr (nodes, pods)"
    )
    nat_gateways: Literal["single", "per-az"] = Field(
        description="One NAT gateway for the VPC (cheaper) or one per zone (zone-resilient)"
    )

    @model_validator(mode="after")
    def _cidrs_fit(self) -> NetworkSettings:
        problems = []
        try:
            vpc = ipaddress.ip_network(self.vpc_cidr)
        except ValueError:
            raise ValueError(f"vpc_cidr: {self.vpc_cidr!r} is not an IPv4 CIDR") from None
        if not 16 <= vpc.prefixlen <= 28:
            problems.append(f"vpc_cidr: {self.vpc_cidr} is outside the /16 to /28 AWS allows")
        zones = len(self.availability_zones)
        if len(set(self.availability_zones)) != zones:
            problems.append("availability_zones: a zone is listed twice")
        seen: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
        for field in ("public_subnet_cidrs", "private_subnet_cidrs"):
            cidrs = getattr(self, field)
            if len(cidrs) != zones:
                problems.append(f"{field}: {len(cidrs)} subnets for {zones} availability zones")
            for i, cidr in enumerate(cidrs):
                try:
                    net = ipaddress.ip_network(cidr)
                except ValueError:
                    problems.append(f"{field}[{i}]: {cidr!r} is not an IPv4 CIDR")
                    continue
                if net.version != 4 or not net.subnet_of(vpc):
                    problems.append(f"{field}[{i}]: {cidr} is not inside vpc_cidr {vpc}")
                for other_name, other in seen:
                    if net.overlaps(other):
                        problems.append(f"{field}[{i}]: {cidr} overlaps {other_name} {other}")
                seen.append((f"{field}[{i}]", net))
        reject(problems)
        return self


# --------------------------------------------------------------------------- EKS


_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")


class EksSettings(Model):
    cluster_name: DnsLabel = Field(description="EKS cluster name")
    endpoint_private_access: bool = Field(description="API reachable from inside the VPC")
    endpoint_public_access: bool = Field(description="API reachable from the internet")
    public_access_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs allowed to reach a public endpoint (empty: endpoint is private)",
    )
    build_access_cidrs: list[str] = Field(
        default_factory=list,
        description="With a private-only endpoint: the CIDRs a runner outside the VPC builds "
        "from; public access is on for them alone while it runs (ignored when the endpoint "
        "is public: public_access_cidrs says who reaches it)",
    )
    admin_principals: list[str] = Field(
        default_factory=list,
        description="IAM role or user ARNs given cluster admin with EKS access entries "
        "(the creator has it already; add the roles CI and operators run as)",
    )
    log_types: list[Literal[EKS_LOG_TYPES]] = Field(  # type: ignore[valid-type]
        description="Control-plane log types sent to CloudWatch"
    )
    log_retention_days: int = Field(description="CloudWatch retention of control-plane logs")
    version_strategy: Literal["latest", "n-1", "n-2"] = Field(
        description="Which offered Kubernetes version to run when `version` is not set"
    )
    version: str | None = Field(
        default=None, description="Explicit Kubernetes version (e.g. 1.33); wins over strategy"
    )

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"{value} is not a CloudWatch retention; use one of {LOG_RETENTION_DAYS}"
            )
        return value

    @field_validator("public_access_cidrs", "build_access_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        bad = []
        for cidr in value:
            try:
                ipaddress.IPv4Network(cidr)
            except ValueError:
                bad.append(cidr)
        if bad:
            raise ValueError(
                f"{bad} not IPv4 CIDRs with their host bits zero (e.g. 203.0.113.0/24)"
            )
        return value

    @field_validator("admin_principals")
    @classmethod
    def _principals(cls, value: list[str]) -> list[str]:
        bad = [arn for arn in value if not _PRINCIPAL.match(arn)]
        if bad:
            raise ValueError(
                f"{bad} not IAM role or user ARNs (arn:aws:iam::<account>:role/<name>; an "
                "assumed-role session ARN is given as its role)"
            )
        if len(set(value)) != len(value):
            raise ValueError("a principal is listed twice")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not _K8S_VERSION.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes minor version (e.g. 1.33)")
        return value

    @model_validator(mode="after")
    def _endpoint(self) -> EksSettings:
        if not (self.endpoint_private_access or self.endpoint_public_access):
            raise ValueError("endpoint_private_access and endpoint_public_access are both off")
        if self.public_access_cidrs and not self.endpoint_public_access:
            raise ValueError("public_access_cidrs: set while endpoint_public_access is off")
        if self.endpoint_public_access and not self.public_access_cidrs:
            # EKS would open the API to 0.0.0.0/0; that must be written, not defaulted to.
            raise ValueError(
                "public_access_cidrs: required when endpoint_public_access is on (the "
                "addresses allowed to reach the API; 0.0.0.0/0 means the whole internet)"
            )
        return self


class NodeGroup(Model):
    role: Literal["system", "workload"] = Field(
        description="system: platform services (tainted off for apps); workload: applications"
    )
    instance_types: list[str] = Field(min_length=1, description="EC2 instance types")
    capacity_type: Literal["ON_DEMAND", "SPOT"] = Field(description="EC2 purchase option")
    min_size: int = Field(ge=0, description="Autoscaling minimum")
    desired_size: int = Field(ge=0, description="Nodes at creation")
    max_size: int = Field(ge=1, description="Autoscaling maximum")
    disk_size_gib: int = Field(default=50, ge=20, le=16384, description="Root volume size (GiB)")
    labels: dict[str, str] = Field(default_factory=dict, description="Kubernetes node labels")

    @model_validator(mode="after")
    def _check(self) -> NodeGroup:
        problems = []
        if not self.min_size <= self.desired_size <= self.max_size:
            problems.append(
                f"sizes must satisfy min_size <= desired_size <= max_size "
                f"(got {self.min_size} <= {self.desired_size} <= {self.max_size})"
            )
        known = [t for t in self.instance_types if t in INSTANCE_TYPES]
        for t in self.instance_types:
            if t not in INSTANCE_TYPES:
                problems.append(f"instance_types: {t!r} is unknown")
            elif self.capacity_type == "SPOT" and not INSTANCE_TYPES[t].spot:
                problems.append(f"instance_types: {t!r} is not offered as SPOT capacity")
        if len(set(self.instance_types)) != len(self.instance_types):
            problems.append("instance_types: a type is listed twice")
        if len({INSTANCE_TYPES[t].arch for t in known}) > 1:
            problems.append("instance_types: mixed architectures; a node group has one AMI type")
        # The guide's SPOT group is diversified. EKS managed node groups always allocate
        # SPOT capacity price-capacity-optimized over the group's types (the API has no
        # strategy to set), so diversity comes from the types: two or more, of one size.
        if self.capacity_type == "SPOT":
            if len(self.instance_types) < 2:
                problems.append("instance_types: a SPOT group needs at least 2 types")
            sizes = {(INSTANCE_TYPES[t].vcpu, INSTANCE_TYPES[t].memory_gib) for t in known}
            if len(sizes) > 1:
                problems.append(
                    "instance_types: a SPOT group needs types of one size (vCPU, memory)"
                )
        reject(problems)
        return self


class AddOn(Model):
    version: str | None = Field(
        default=None, description="Add-on version; empty: the default for the cluster version"
    )
    service_account_role: bool = Field(
        default=False, description="Give the add-on an IAM role through the cluster's OIDC"
    )


class AddOnSettings(Model):
    strategy: Literal["essential_only"] = Field(
        description="Guide: essential add-ons only, cost over features"
    )
    items: dict[str, AddOn] = Field(description="EKS managed add-ons by name")

    @model_validator(mode="after")
    def _essential(self) -> AddOnSettings:
        missing = [a for a in ESSENTIAL_ADDONS if a not in self.items]
        unknown = [a for a in self.items if a not in (*ESSENTIAL_ADDONS, *FEATURE_ADDONS)]
        if missing:
            raise ValueError(f"items: essential add-ons missing: {', '.join(missing)}")
        if unknown:
            raise ValueError(f"items: {', '.join(unknown)} not essential (strategy essential_only)")
        return self


# --------------------------------------------------------------------------- resources


class ResourceAmounts(Model):
    cpu: CpuQuantity = Field(description="CPU, e.g. 100m or 2")
    memory: MemoryQuantity = Field(description="Memory, e.g. 256Mi or 2Gi")


class Resources(Model):
    requests: ResourceAmounts = Field(description="What the scheduler reserves")
    limits: ResourceAmounts = Field(description="Ceiling enforced by the kubelet")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        if cpu_millis(self.requests.cpu) > cpu_millis(self.limits.cpu):
            raise ValueError(
                f"requests.cpu {self.requests.cpu} exceeds limits.cpu {self.limits.cpu}"
            )
        if memory_bytes(self.requests.memory) > memory_bytes(self.limits.memory):
            raise ValueError(
                f"requests.memory {self.requests.memory} exceeds limits.memory {self.limits.memory}"
            )
        return self


# --------------------------------------------------------------------------- ingress


class CertManagerSettings(Model):
    certificate_strategy: Literal["wildcard", "per-host"] = Field(
        description="Guide: one wildcard certificate for the platform domain"
    )
    issuer_email: str = Field(description="ACME account e-mail of the cluster issuer")
    resources: Resources = Field(description="Controller resources")


class ExternalDnsSettings(Model):
    provider: Literal["cloudflare", "aws"] = Field(description="DNS provider")
    sync_interval: Duration = Field(description="How often records are reconciled")
    policy: Literal["sync", "upsert-only"] = Field(
        description="sync deletes records it no longer owns; upsert-only never deletes"
    )
    token_secret_block: DnsLabel | None = Field(
        default=None,
        description="Name of the Prefect Secret block holding the Cloudflare API token; "
        "empty: cloudflare-api-token-<environment>, so each environment has its own",
    )
    placeholder_token_allowed: bool = Field(
        default=False,
        description="The target's DNS provider is a stand-in (the sandbox), so the token "
        "may be a placeholder; against a real provider it must look like a Cloudflare "
        "API token",
    )
    resources: Resources = Field(description="Controller resources")


class AmbassadorSettings(Model):
    load_balancer_strategy: Literal["shared"] = Field(
        description="Guide: one shared load balancer for every host"
    )
    replicas: int = Field(ge=1, description="Gateway replicas")
    connection_pooling: bool = Field(description="Upstream connection pooling")
    keep_alive: bool = Field(description="HTTP keep-alive to clients and upstreams")
    compression: bool = Field(description="gzip response compression")
    resources: Resources = Field(description="Gateway resources")


class IngressSettings(Model):
    domain: str = Field(description="Platform DNS domain; the wildcard certificate covers it")
    cert_manager: CertManagerSettings = Field(description="cert-manager settings")
    external_dns: ExternalDnsSettings = Field(description="external-dns settings")
    ambassador: AmbassadorSettings = Field(description="Ambassador (Emissary) gateway settings")

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not _DOMAIN.match(value):
            raise ValueError(f"{value!r} is not a DNS domain (e.g. platform.example.com)")
        return value


# --------------------------------------------------------------------------- observability


class BucketLifecycle(Model):
    transition_to_ia_days: int | None = Field(
        ge=30, description="Move objects to STANDARD_IA after this many days (S3 minimum: 30)"
    )
    expiration_days: int = Field(ge=1, description="Delete objects after this many days")
    abort_incomplete_multipart_days: int = Field(
        ge=1, description="Abort unfinished multipart uploads after this many days"
    )

    @model_validator(mode="after")
    def _order(self) -> BucketLifecycle:
        if self.transition_to_ia_days and self.transition_to_ia_days >= self.expiration_days:
            raise ValueError(
                f"transition_to_ia_days: {self.transition_to_ia_days} must come before "
                f"expiration_days {self.expiration_days}"
            )
        return self


class ObjectStorage(Model):
    bucket_suffix: DnsLabel = Field(
        description="Bucket name is <platform>-<environment>-<suffix>-<platform.bucket_namespace>"
    )
    versioning: bool = Field(description="Keep object versions")
    lifecycle: BucketLifecycle = Field(description="S3 lifecycle rules (guide: s3_lifecycle)")


class RemoteWrite(Model):
    enabled: bool = Field(description="Send samples to Mimir for long-term storage")
    target: Literal["mimir"] = Field(description="Long-term store receiving remote write")


class PrometheusSettings(Model):
    retention: Duration = Field(description="Local TSDB retention (guide: 15d, Mimir is long-term)")
    scrape_interval: Duration = Field(description="Default scrape interval")
    evaluation_interval: Duration = Field(description="Rule evaluation interval")
    remote_write: RemoteWrite = Field(description="Remote write to Mimir")
    wal_compression: bool = Field(description="Compress the write-ahead log")
    storage_size: MemoryQuantity = Field(description="TSDB volume size on the gp3 class")
    resources: Resources = Field(description="Prometheus server resources")

    @model_validator(mode="after")
    def _intervals(self) -> PrometheusSettings:
        if duration_seconds(self.evaluation_interval) > duration_seconds(self.retention):
            raise ValueError("evaluation_interval: longer than retention")
        if duration_seconds(self.scrape_interval) > duration_seconds(self.retention):
            raise ValueError("scrape_interval: longer than retention")
        return self


class MimirSettings(Model):
    storage: ObjectStorage = Field(description="S3 bucket holding Mimir blocks")
    retention: Duration = Field(description="How long Mimir keeps metrics (compactor)")


class LokiSettings(Model):
    retention_period: Duration = Field(description="Log retention (compactor deletes after it)")
    chunk_target_size: int = Field(ge=262144, description="Target compressed chunk size (bytes)")
    max_chunk_age: Duration = Field(description="Flush a chunk at the latest after this age")
    compression: Literal["gzip", "snappy", "lz4", "zstd", "none"] = Field(
        description="Chunk encoding"
    )
    index_period: Duration = Field(description="TSDB index period (Loki requires 24h)")
    storage: ObjectStorage = Field(description="S3 bucket holding chunks and index")
    resources: Resources = Field(description="Loki resources")

    @model_validator(mode="after")
    def _periods(self) -> LokiSettings:
        index = duration_seconds(self.index_period)
        if index != 86400:
            raise ValueError(f"index_period: {self.index_period}; Loki's TSDB index needs 24h")
        if duration_seconds(self.retention_period) % index:
            raise ValueError(
                f"retention_period: {self.retention_period} is not a multiple of "
                f"index_period {self.index_period}"
            )
        expiry_days = self.storage.lifecycle.expiration_days
        if expiry_days * 86400 < duration_seconds(self.retention_period):
            raise ValueError(
                f"storage.lifecycle.expiration_days: {expiry_days} deletes chunks before "
                f"retention_period {self.retention_period} ends"
            )
        return self


class TempoSettings(Model):
    retention: Duration = Field(description="Trace retention")
    resources: Resources = Field(description="Tempo resources")


class GrafanaSettings(Model):
    dashboard_caching: bool = Field(
        description="Cache dashboard queries: Grafana Enterprise and Cloud's query cache "
        "(OSS Grafana ignores it), and incremental querying of the Prometheus and Mimir "
        "data sources, which every edition does"
    )
    query_timeout: Duration = Field(description="Data source query timeout")
    max_concurrent_queries: int = Field(ge=1, le=1000, description="Concurrent data source queries")
    dashboards: list[DnsLabel] = Field(
        default_factory=list, description="Dashboards preloaded at install"
    )
    resources: Resources = Field(description="Grafana resources")


class ObservabilitySettings(Model):
    prometheus: PrometheusSettings = Field(description="Prometheus (kube-prometheus-stack)")
    mimir: MimirSettings = Field(description="Mimir, long-term metrics")
    loki: LokiSettings = Field(description="Loki, logs")
    tempo: TempoSettings = Field(description="Tempo, traces")
    grafana: GrafanaSettings = Field(description="Grafana")

    @model_validator(mode="after")
    def _distinct_buckets(self) -> ObservabilitySettings:
        if self.mimir.storage.bucket_suffix == self.loki.storage.bucket_suffix:
            raise ValueError(
                "loki.storage.bucket_suffix: same as mimir's; each needs its own bucket"
            )
        return self


STORAGE_PARTS = ("mimir", "loki")  # the services that keep their data in S3
# The Kubernetes service account each of them runs as; its IAM role (IRSA) trusts it.
SERVICE_ACCOUNTS = {"mimir": "mimir", "loki": "loki"}


def object_storage(spec: PlatformSpec, storage: str) -> ObjectStorage:
    """The object storage settings of ``"mimir"`` or ``"loki"``."""
    owners = {"mimir": spec.observability.mimir, "loki": spec.observability.loki}
    if storage not in owners:
        raise KeyError(f"{storage!r} has no object storage; known: {', '.join(owners)}")
    return owners[storage].storage


MAX_BUCKET_NAME = 63
ACCOUNT_ID_PLACEHOLDER = "123456789012"  # as long as any AWS account ID


def bucket_name(spec: PlatformSpec, storage: str, account_id: str) -> str:
    """``<platform>-<environment>-<suffix>-<namespace>``. S3 names are global: another
    installation anywhere uses the same platform and environment names, so the last part is
    the spec's ``platform.bucket_namespace`` or else the account's ID."""
    suffix = object_storage(spec, storage).bucket_suffix
    namespace = spec.platform.bucket_namespace or account_id
    return f"{spec.platform.name}-{spec.platform.environment}-{suffix}-{namespace}"


DNS_TOKEN_BLOCK = "cloudflare-api-token-{environment}"


def dns_token_block(spec: PlatformSpec) -> str:
    """The Secret block of the DNS provider's token: the spec's, else one per environment
    (so a token saved for one environment is never read by another)."""
    chosen = spec.ingress.external_dns.token_secret_block
    return chosen or DNS_TOKEN_BLOCK.format(environment=spec.platform.environment)


# --------------------------------------------------------------------------- shared


class StorageClassSettings(Model):
    name: DnsLabel = Field(description="StorageClass name shared by every stateful service")
    volume_type: Literal["gp3", "gp2", "io2"] = Field(description="EBS volume type")
    default: bool = Field(description="Mark as the cluster's default class")
    allow_volume_expansion: bool = Field(description="Let PVCs grow in place")
    reclaim_policy: Literal["Delete", "Retain"] = Field(description="What happens to released PVs")
    volume_binding_mode: Literal["WaitForFirstConsumer", "Immediate"] = Field(
        description="WaitForFirstConsumer puts volumes in the zone of their pod"
    )
    encrypted: bool = Field(description="Encrypt volumes with the default KMS key")
    snapshots: bool = Field(description="Create a VolumeSnapshotClass for this driver")
    snapshot_class_name: DnsLabel = Field(description="VolumeSnapshotClass name")


class Gate(Model):
    check: Literal[
        "cluster_api_accessible", "load_balancer_provisioned", "prometheus_targets_discovered"
    ] = Field(description="What the gate verifies")
    timeout: Duration = Field(description="Give up after this long")
    retry_interval: Duration = Field(description="Wait between attempts")

    @model_validator(mode="after")
    def _timeout(self) -> Gate:
        if duration_seconds(self.timeout) < duration_seconds(self.retry_interval):
            raise ValueError(
                f"timeout: {self.timeout} is shorter than retry_interval {self.retry_interval}"
            )
        return self


class Gates(Model):
    foundation: Gate = Field(description="Cluster API accessible")
    ingress: Gate = Field(description="Load balancer provisioned")
    observability: Gate = Field(description="Prometheus targets discovered")


class FoundationValidation(Model):
    min_nodes: int = Field(ge=1, description="kubectl get nodes must count at least this many")
    min_kube_system_running_pods: int = Field(
        ge=1, description="Running pods in kube-system, at least"
    )
    cluster_status: Literal["ACTIVE"] = Field(description="aws eks describe-cluster status")


class ResourceShares(Model):
    system_overhead: Percent = Field(description="Kubelet, OS and add-ons (%)")
    platform_services: Percent = Field(description="The platform's own services (%)")
    application_workloads: Percent = Field(description="Applications (%)")
    scaling_buffer: Percent = Field(description="Emergency headroom (%)")

    @model_validator(mode="after")
    def _sum(self) -> ResourceShares:
        total = (
            self.system_overhead
            + self.platform_services
            + self.application_workloads
            + self.scaling_buffer
        )
        if abs(total - 100) > 1e-9:
            raise ValueError(f"shares sum to {total:g}%, not 100%")
        return self


class NodeReservations(Model):
    """Applied to every node through the kubelet configuration of its bootstrap."""

    memory_reserved: MemoryQuantity = Field(description="kube/system-reserved memory")
    cpu_reserved: CpuQuantity = Field(description="kube/system-reserved CPU")
    eviction_memory_available: MemoryQuantity = Field(
        description="Hard eviction when available memory drops below this"
    )
    cpu_manager_policy: Literal["none", "static"] = Field(
        description="static pins CPUs for Guaranteed pods"
    )
    cpu_cfs_quota: bool = Field(description="Enforce CPU limits with CFS quota")
    oom_score_adjustment: bool = Field(description="Protect critical pods from the OOM killer")


class ResourceAllocation(Model):
    shares: ResourceShares = Field(description="Cluster resource distribution")
    node: NodeReservations = Field(description="Per-node reservations")


class Kpis(Model):
    total_deployment_minutes: float = Field(gt=0, description="A full run must finish within")
    deployment_success_rate_percent: Percent = Field(description="Successful runs, at least")
    rollback_frequency_percent: Percent = Field(description="Runs rolled back, at most")
    cluster_utilization_percent: tuple[Percent, Percent] = Field(
        description="Target utilization band [low, high]"
    )
    resource_waste_percent: Percent = Field(description="Requested but unused, at most")
    mttr_minutes: float = Field(gt=0, description="Mean time to recovery, at most")
    failure_detection_minutes: float = Field(
        gt=0, description="A failed deployment is detected within"
    )
    rollback_minutes: float = Field(gt=0, description="A failed deployment is rolled back within")

    @model_validator(mode="after")
    def _band(self) -> Kpis:
        low, high = self.cluster_utilization_percent
        if low > high:
            raise ValueError(f"cluster_utilization_percent: [{low:g}, {high:g}] is not a band")
        return self


class OptimizationTriggers(Model):
    deployment_time_factor: float = Field(
        gt=1, description="Analyse bottlenecks when a run takes longer than baseline x this"
    )
    low_utilization_percent: Percent = Field(description="Right-size when utilization stays below")
    low_utilization_window: Duration = Field(description="... for this long")
    cost_increase_percent: Percent = Field(
        description="Cost analysis when cost rises this much without a performance gain"
    )


class HealthMonitoring(Model):
    check_frequency: Duration = Field(description="Guide: health checks every 30s")
    revalidation_cron: str = Field(
        description="Cron of the scheduled re-validation run (5 fields, UTC)"
    )
    drift_notification_block: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$",
        description="Prefect notification block told when drift is detected, as "
        "<block type>/<name> (e.g. slack-webhook/platform-team); empty: nobody is told",
    )
    remediate_on_drift: bool = Field(
        default=False,
        description="When drift is detected, start a remediation run (revalidate_platform "
        "with remediate=true) at once instead of waiting for someone to",
    )

    @field_validator("revalidation_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a 5-field cron expression")
        return value


class Runtime(Model):
    helm_concurrency: int = Field(
        ge=1,
        le=32,
        description="Helm operations at once on the environment's cluster, across runs "
        "(unbounded was flaky elsewhere)",
    )
    budget_margin: float = Field(
        ge=1,
        le=10,
        description="A flow's time budget is its planned finish (critical path, max "
        "durations, at the run's pace) times this margin, plus the allowance",
    )
    budget_allowance: Duration = Field(
        description="Fixed time added to every flow's budget for orchestration overheads "
        "that do not scale with the pace (process and server start, helm polls)"
    )


# --------------------------------------------------------------------------- runner


# The service account the in-cluster worker's flow-run jobs run as (in the `runner`
# component's namespace): its IAM role (IRSA) is made by the foundation and given cluster
# admin with an access entry.
RUNNER_JOB_ACCOUNT = "platform-runner"


class RunnerSettings(Model):
    """The platform's own Prefect worker, inside the cluster's VPC (foundation, `runner`)."""

    work_pool: DnsLabel | None = Field(
        default=None,
        description="The Kubernetes work pool the in-cluster worker serves; empty: "
        "<platform>-<environment>. Deployments on it run inside the VPC",
    )
    image: str = Field(
        min_length=1,
        description="Image of its flow-run jobs: this project with helm "
        "(deployments/Containerfile), pushed where the nodes can pull it",
    )
    api_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="The Prefect API as the worker and its jobs reach it from inside the "
        "VPC; empty: the API this run reports to",
    )
    hand_over: bool = Field(
        description="A private-only cluster built from outside (eks.build_access_cidrs) is "
        "handed to the in-cluster worker when a whole-platform run ends well: public "
        "access is switched off, and later runs from outside stop at preflight (ignored "
        "when the endpoint is public)"
    )


def work_pool(spec: PlatformSpec) -> str:
    """The work pool of the environment's in-cluster worker."""
    return spec.runner.work_pool or f"{spec.platform.name}-{spec.platform.environment}"


# --------------------------------------------------------------------------- the spec


class PlatformSpec(Model):
    """The whole platform: what the guide describes, in one validated document."""

    platform: PlatformSettings = Field(description="Identity and region")
    network: NetworkSettings = Field(description="VPC and subnets")
    eks: EksSettings = Field(description="EKS control plane")
    node_groups: dict[DnsLabel, NodeGroup] = Field(
        min_length=1, description="Managed node groups by name"
    )
    addons: AddOnSettings = Field(description="EKS managed add-ons")
    storage_class: StorageClassSettings = Field(description="The shared gp3 storage class")
    namespaces: dict[str, DnsLabel] = Field(
        description="Namespace of each in-cluster workflow (guide: consolidated namespaces)"
    )
    ingress: IngressSettings = Field(description="Workflow 2: ingress and API gateway")
    observability: ObservabilitySettings = Field(description="Workflow 3: observability")
    gates: Gates = Field(description="Readiness gates between workflows")
    validation: FoundationValidation = Field(description="Foundation validation checks")
    resource_allocation: ResourceAllocation = Field(description="Cluster resource strategy")
    kpis: Kpis = Field(description="Success metrics")
    optimization_triggers: OptimizationTriggers = Field(description="Automated triggers")
    health_monitoring: HealthMonitoring = Field(description="Health checks and re-validation")
    runtime: Runtime = Field(description="How runs execute")
    runner: RunnerSettings = Field(description="The in-cluster Prefect worker")
    extra_needs: dict[DnsLabel, dict[DnsLabel, str]] = Field(
        default_factory=dict,
        description="Needs added to catalogue components: component -> {needed: reason}",
    )

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, value: dict[str, str]) -> dict[str, str]:
        in_cluster = [w for w in WORKFLOWS if w != "foundation"]
        unknown = [w for w in value if w not in in_cluster]
        missing = [w for w in in_cluster if w not in value]
        if unknown:
            raise ValueError(f"unknown workflows {', '.join(unknown)}; expected {in_cluster}")
        if missing:
            raise ValueError(f"no namespace for workflows {', '.join(missing)}")
        reserved = [n for n in value.values() if n in ("default", "kube-public", "kube-node-lease")]
        if reserved:
            raise ValueError(f"namespaces {', '.join(reserved)} are reserved by Kubernetes")
        return value

    @model_validator(mode="after")
    def _cross(self) -> PlatformSpec:
        problems = []
        region = self.platform.region
        for zone in self.network.availability_zones:
            if not (zone.startswith(region) and len(zone) == len(region) + 1):
                problems.append(f"network.availability_zones: {zone!r} is not in region {region}")
        roles = [g.role for g in self.node_groups.values()]
        if "system" not in roles:
            problems.append("node_groups: no group has role system (platform services need one)")
        snapshot_addon = "snapshot-controller" in self.addons.items
        if self.storage_class.snapshots and not snapshot_addon:
            problems.append(
                "storage_class.snapshots: needs the snapshot-controller add-on in addons.items "
                "(it serves the VolumeSnapshot API)"
            )
        if snapshot_addon and not self.storage_class.snapshots:
            problems.append(
                "addons.items.snapshot-controller: only needed for storage_class.snapshots"
            )
        for part in STORAGE_PARTS:
            longest = bucket_name(self, part, ACCOUNT_ID_PLACEHOLDER)
            if len(longest) > MAX_BUCKET_NAME:
                problems.append(
                    f"observability.{part}.storage.bucket_suffix: the bucket name {longest!r} "
                    f"would be {len(longest)} characters; S3 allows {MAX_BUCKET_NAME}"
                )
        desired = sum(g.desired_size for g in self.node_groups.values())
        if desired < self.validation.min_nodes:
            problems.append(
                f"node_groups: desired sizes add up to {desired} nodes but "
                f"validation.min_nodes is {self.validation.min_nodes}"
            )
        reject(problems)
        return self
