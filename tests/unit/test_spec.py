"""The spec: the shipped files are valid, and bad values are rejected naming the field."""

from __future__ import annotations

import pytest

from blueprint.errors import SpecError
from blueprint.loader import environments, load_spec, validate_spec
from blueprint.units import cpu_millis, duration_seconds, memory_bytes
from tests.unit.conftest import set_path


@pytest.mark.parametrize("env", [None, *environments()])
def test_shipped_specs_are_valid(env):
    spec = load_spec(env)
    assert spec.validation.min_nodes == 3


def test_defaults_hold_the_guides_values():
    spec = load_spec()
    assert spec.eks.endpoint_private_access and not spec.eks.endpoint_public_access
    assert spec.eks.log_retention_days == 7 and spec.eks.version_strategy == "n-1"
    system, workload = spec.node_groups["system"], spec.node_groups["workload"]
    assert (system.instance_types, system.capacity_type) == (["t3.medium"], "ON_DEMAND")
    assert (system.min_size, system.max_size) == (2, 3)
    assert workload.instance_types == ["t3.large", "t3a.large", "t2.large"]
    assert workload.capacity_type == "SPOT"
    assert (workload.min_size, workload.max_size) == (1, 8)
    essential = {"vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver"}
    # snapshot-controller serves the VolumeSnapshot API the guide's snapshot policies need.
    assert set(spec.addons.items) == essential | {"snapshot-controller"}
    ingress = spec.ingress
    assert ingress.ambassador.resources.requests.model_dump() == {"cpu": "200m", "memory": "256Mi"}
    assert ingress.ambassador.resources.limits.model_dump() == {"cpu": "500m", "memory": "512Mi"}
    assert ingress.cert_manager.resources.limits.model_dump() == {"cpu": "200m", "memory": "256Mi"}
    assert ingress.external_dns.sync_interval == "60s"
    assert ingress.external_dns.resources.requests.model_dump() == {"cpu": "25m", "memory": "32Mi"}
    prom = spec.observability.prometheus
    assert (prom.retention, prom.scrape_interval, prom.evaluation_interval) == ("15d", "30s", "30s")
    assert (
        prom.remote_write.enabled and prom.remote_write.target == "mimir" and prom.wal_compression
    )
    assert prom.resources.limits.model_dump() == {"cpu": "2", "memory": "4Gi"}
    loki = spec.observability.loki
    assert (loki.retention_period, loki.chunk_target_size, loki.max_chunk_age) == (
        "30d",
        1572864,
        "2h",
    )
    assert (loki.compression, loki.index_period) == ("gzip", "24h")
    grafana = spec.observability.grafana
    assert (grafana.dashboard_caching, grafana.query_timeout, grafana.max_concurrent_queries) == (
        True,
        "30s",
        20,
    )
    assert {"security", "data", "istio-system", "argocd"} <= set(spec.namespaces.values())
    assert spec.storage_class.volume_type == "gp3" and spec.storage_class.allow_volume_expansion
    assert spec.storage_class.snapshots
    gates = spec.gates
    assert (gates.foundation.timeout, gates.foundation.retry_interval) == ("300s", "30s")
    assert (gates.ingress.timeout, gates.ingress.retry_interval) == ("600s", "60s")
    assert (gates.observability.timeout, gates.observability.retry_interval) == ("300s", "30s")
    shares = spec.resource_allocation.shares
    assert [shares.system_overhead, shares.platform_services] == [15, 45]
    assert [shares.application_workloads, shares.scaling_buffer] == [35, 5]
    node = spec.resource_allocation.node
    assert (node.memory_reserved, node.cpu_reserved) == ("1Gi", "100m")
    assert (node.eviction_memory_available, node.cpu_manager_policy) == ("100Mi", "static")
    assert spec.kpis.total_deployment_minutes == 60
    assert spec.kpis.deployment_success_rate_percent == 95
    assert spec.optimization_triggers.deployment_time_factor == 1.5


# (path, value, text the message must contain). The path must appear in the message too.
INVALID = [
    ("platform.name", "Platform_1", "not a DNS-1123 label"),
    ("platform.region", "moon-base", "not an AWS region"),
    ("platform.+colour", "blue", "unknown field"),
    ("network.vpc_cidr", "10.0.0.0/33", "not an IPv4 CIDR"),
    ("network.vpc_cidr", "10.0.0.0/8", "outside the /16 to /28"),
    ("network.private_subnet_cidrs.0", "192.168.0.0/20", "is not inside vpc_cidr"),
    ("network.public_subnet_cidrs.1", "10.0.0.0/20", "overlaps"),
    ("network.public_subnet_cidrs", ["10.0.0.0/20"], "1 subnets for 3 availability zones"),
    ("network.availability_zones", ["eu-west-1a", "eu-west-1b", "eu-west-1c"], "not in region"),
    ("network.nat_gateways", "many", "Input should be 'single' or 'per-az'"),
    ("eks.log_retention_days", 10, "not a CloudWatch retention"),
    ("eks.version_strategy", "newest", "Input should be"),
    ("eks.version", "1.3x", "not a Kubernetes minor version"),
    ("eks.endpoint_private_access", False, "are both off"),
    ("eks.cluster_name", "x" * 70, "not a DNS-1123 label"),
    ("node_groups.system.min_size", 4, "min_size <= desired_size <= max_size"),
    ("node_groups.workload.desired_size", 9, "min_size <= desired_size <= max_size"),
    ("node_groups.system.instance_types", ["t3.mega"], "'t3.mega' is unknown"),
    ("node_groups.workload.instance_types", ["mac1.metal", "t3.large"], "not offered as SPOT"),
    ("node_groups.workload.instance_types", ["t3.large", "t4g.large"], "mixed architectures"),
    ("node_groups.workload.instance_types", ["t3.large", "t3.xlarge"], "one size"),
    ("node_groups.workload.instance_types", ["t3.large"], "at least 2 types"),
    ("node_groups.workload.spot_allocation_strategy", "diversified", "unknown field"),
    ("node_groups.system.capacity_type", "RESERVED", "Input should be 'ON_DEMAND' or 'SPOT'"),
    ("node_groups.Bad_Name", {}, "not a DNS-1123 label"),
    ("addons.items.+istio", {}, "not essential"),
    ("ingress.domain", "not a domain", "not a DNS domain"),
    ("ingress.cert_manager.resources.requests.cpu", "lots", "not a CPU quantity"),
    ("ingress.cert_manager.resources.requests.cpu", "300m", "exceeds limits.cpu"),
    ("ingress.ambassador.resources.requests.memory", "1Gi", "exceeds limits.memory"),
    ("ingress.external_dns.sync_interval", "a minute", "not a duration"),
    ("ingress.ambassador.replicas", 0, "greater than or equal to 1"),
    ("observability.loki.index_period", "12h", "needs 24h"),
    ("observability.loki.retention_period", "30d12h", "not a multiple of index_period"),
    ("observability.loki.storage.lifecycle.expiration_days", 7, "before retention_period"),
    ("observability.loki.storage.bucket_suffix", "mimir-blocks", "each needs its own bucket"),
    ("observability.mimir.storage.bucket_suffix", "m" * 40, "would be 70 characters; S3 allows 63"),
    ("platform.bucket_namespace", "Team_A", "not a DNS-1123 label"),
    ("observability.mimir.storage.lifecycle.transition_to_ia_days", 500, "must come before"),
    ("observability.prometheus.scrape_interval", "30d", "longer than retention"),
    ("observability.grafana.max_concurrent_queries", 0, "greater than or equal to 1"),
    ("namespaces.security", "Security!", "not a DNS-1123 label"),
    ("namespaces.data-services", "default", "reserved by Kubernetes"),
    ("namespaces.+billing", "billing", "unknown workflows billing"),
    ("gates.ingress.timeout", "30s", "shorter than retry_interval"),
    ("gates.foundation.check", "vibes", "Input should be"),
    ("resource_allocation.shares.scaling_buffer", 10, "sum to 105%"),
    ("resource_allocation.shares.system_overhead", -5, "greater than or equal to 0"),
    ("resource_allocation.node.memory_reserved", "1 GB", "not a memory quantity"),
    ("kpis.cluster_utilization_percent", [80, 70], "is not a band"),
    ("validation.min_nodes", 9, "validation.min_nodes is 9"),
    ("health_monitoring.revalidation_cron", "every hour", "not a 5-field cron"),
    ("storage_class.volume_type", "gp9", "Input should be"),
]


@pytest.mark.parametrize(("path", "value", "expected"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_values_are_rejected_naming_the_field(spec_data, path, value, expected):
    set_path(spec_data, path, value)
    with pytest.raises(SpecError) as caught:
        validate_spec(spec_data)
    problems = caught.value.problems
    matching = [p for p in problems if expected in p]
    assert matching, problems
    # The message names the field: it starts with the path of the field or of the model
    # owning the check (e.g. ``node_groups.system: sizes must ...``), or quotes the path.
    field = path.replace("+", "")
    lead = matching[0].split(": ")[0]
    assert field.startswith(lead.replace("[", ".").replace("]", "")) or field in matching[0], (
        matching[0]
    )


def test_snapshots_need_the_snapshot_controller(spec_data):
    del spec_data["addons"]["items"]["snapshot-controller"]
    with pytest.raises(SpecError) as caught:
        validate_spec(spec_data)
    assert caught.value.problems == [
        "storage_class.snapshots: needs the snapshot-controller add-on in addons.items "
        "(it serves the VolumeSnapshot API)"
    ]
    spec_data["storage_class"]["snapshots"] = False
    assert not validate_spec(spec_data).storage_class.snapshots


def test_distinct_invalid_cases():
    assert len({(p, repr(v)) for p, v, _ in INVALID}) >= 20


def test_every_problem_is_reported_not_just_the_first(spec_data):
    set_path(spec_data, "platform.region", "nowhere")
    set_path(spec_data, "eks.log_retention_days", 2)
    set_path(spec_data, "node_groups.system.min_size", 9)
    del spec_data["gates"]
    with pytest.raises(SpecError) as caught:
        validate_spec(spec_data)
    text = "\n".join(caught.value.problems)
    for field in ("platform.region", "eks.log_retention_days", "node_groups.system", "gates"):
        assert field in text
    assert "gates: Field required" in text


def test_every_field_is_described():
    from pydantic import BaseModel

    from blueprint.spec import PlatformSpec

    seen, undescribed = set(), []

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            if not field.description:
                undescribed.append(f"{model.__name__}.{name}")
            for arg in _models_in(field.annotation):
                walk(arg)

    walk(PlatformSpec)
    assert not undescribed


def _models_in(annotation):
    from typing import get_args

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models_in(arg)


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (cpu_millis, "200m", 200),
        (cpu_millis, "2", 2000),
        (cpu_millis, "0.5", 500),
        (memory_bytes, "256Mi", 256 * 2**20),
        (memory_bytes, "1G", 10**9),
        (duration_seconds, "15d", 15 * 86400),
        (duration_seconds, "1h30m", 5400),
        (duration_seconds, "500ms", 0.5),
    ],
)
def test_units(parse, text, value):
    assert parse(text) == value


def test_public_access_names_its_allow_list(spec_data):
    """EKS would open a public endpoint to 0.0.0.0/0: the spec must say who may reach it."""
    set_path(spec_data, "eks.endpoint_public_access", True)
    with pytest.raises(SpecError) as caught:
        validate_spec(spec_data)
    assert any(
        p.startswith("eks.public_access_cidrs: required when endpoint_public_access is on")
        for p in caught.value.problems
    ), caught.value.problems
    set_path(spec_data, "eks.public_access_cidrs", ["203.0.113.0/24"])
    assert validate_spec(spec_data).eks.public_access_cidrs == ["203.0.113.0/24"]


def test_endpoint_cidrs_must_be_ipv4_networks(spec_data):
    set_path(spec_data, "eks.build_access_cidrs", ["203.0.113.7/24", "not-a-cidr"])
    with pytest.raises(SpecError) as caught:
        validate_spec(spec_data)
    (problem,) = caught.value.problems
    assert problem.startswith("eks.build_access_cidrs: ") and "203.0.113.7/24" in problem
    set_path(spec_data, "eks.build_access_cidrs", ["203.0.113.0/24"])
    assert validate_spec(spec_data).eks.build_access_cidrs == ["203.0.113.0/24"]


def test_the_in_cluster_runner_needs_an_image_and_an_api_url_of_the_web(spec_data):
    set_path(spec_data, "runner.image", "")
    set_path(spec_data, "runner.api_url", "prefect.internal:4200")
    with pytest.raises(SpecError) as caught:
        validate_spec(spec_data)
    assert sorted(p.split(":", 1)[0] for p in caught.value.problems) == [
        "runner.api_url",
        "runner.image",
    ]
