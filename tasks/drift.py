"""Drift: how the live platform differs from the spec, component by component, read-only.

Each check reads what exists (AWS, the cluster, helm's release records) and hands it to a
pure comparison that returns the issues found; a component's finding takes the worst of
them. Details name fields and keys, never values: chart values and tags may hold secrets.

The ``detect_drift`` task runs one component's check; ``foundation_inputs`` reads what the
foundation tasks hand each other (network, roles, cluster), so a drifted component can be
converged without re-running the components it needs that are fine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from blueprint.catalogue import ChartRef, Component
from blueprint.spec import NodeGroup, PlatformSpec, bucket_name
from tasks.aws.addons import describe_addon
from tasks.aws.clients import AwsClients
from tasks.aws.eks import Cluster, choose_version, describe_cluster, offered_versions
from tasks.aws.errors import AwsError, aws_call
from tasks.aws.iam import Roles, role_names
from tasks.aws.identity import PART_TAG, Identity, tag_dict
from tasks.aws.volumes import volume_tags
from tasks.aws.vpc import COMPONENT as VPC_COMPONENT
from tasks.aws.vpc import Network
from tasks.context import RunContext, helm_binary
from tasks.gates import GateNotReady
from tasks.helm import DeployedRelease, chart_crds, crd_in_sync, deployed_release
from tasks.platform import _gate_check, service_account_roles, values_context
from tasks.storage import SNAPSHOT, storage_class_body
from tasks.values import chart_values

Status = Literal["ok", "drifted", "missing", "unhealthy"]
# A component's status is its worst issue's.
SEVERITY: dict[str, int] = {"ok": 0, "drifted": 1, "unhealthy": 2, "missing": 3}
DETAIL_LIMIT = 300
VALIDATION = "foundation-validation"  # the row of the guide's foundation validation


@dataclass(frozen=True)
class Issue:
    status: Status
    text: str


@dataclass(frozen=True)
class Finding:
    component: str
    workflow: str
    kind: str
    status: Status
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def finding(name: str, workflow: str, kind: str, issues: list[Issue], healthy: str) -> Finding:
    """The finding of one component: ok with ``healthy`` as detail, or its worst issue's
    status with every issue in the detail."""
    if not issues:
        return Finding(name, workflow, kind, "ok", healthy)
    worst = max(issues, key=lambda i: SEVERITY[i.status]).status
    return Finding(name, workflow, kind, worst, _short("; ".join(i.text for i in issues)))


def _short(text: str) -> str:
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 3] + "..."


# ---------------------------------------------------------------- pure comparisons

_ABSENT = object()


def values_drift(deployed: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Top-level keys set on one side only or set differently: the comparison
    ``ensure_release`` makes before an upgrade, by key, so a report can name the keys
    without showing the values."""
    return sorted(
        key
        for key in {*deployed, *wanted}
        if deployed.get(key, _ABSENT) != wanted.get(key, _ABSENT)
    )


def release_issues(
    chart: ChartRef, namespace: str, deployed: DeployedRelease | None, wanted: dict[str, Any]
) -> list[Issue]:
    if deployed is None:
        return [Issue("missing", f"release {chart.release} is not installed in {namespace}")]
    issues = []
    if deployed.status != "deployed":
        issues.append(Issue("unhealthy", f"revision {deployed.revision} is {deployed.status}"))
    if not deployed.runs(chart):
        issues.append(
            Issue(
                "drifted",
                f"chart {deployed.chart}, the catalogue pins {chart.name}-{chart.version}",
            )
        )
    keys = values_drift(deployed.values, wanted)
    if keys:
        issues.append(Issue("drifted", f"values differ under {', '.join(keys)}"))
    return issues


def scaling_of(group: NodeGroup) -> dict[str, int]:
    """The spec's sizes as EKS's ``scalingConfig``."""
    return {"minSize": group.min_size, "maxSize": group.max_size, "desiredSize": group.desired_size}


def node_group_issues(name: str, group: NodeGroup, found: dict[str, Any] | None) -> list[Issue]:
    if found is None:
        return [Issue("missing", f"node group {name} is missing")]
    issues = []
    if found.get("status") != "ACTIVE":
        codes = [i.get("code", "?") for i in (found.get("health") or {}).get("issues", [])]
        health = f" ({', '.join(codes)})" if codes else ""
        issues.append(Issue("unhealthy", f"{name} is {found.get('status')}{health}"))
    scaling = found.get("scalingConfig") or {}
    off = [
        f"{k} {scaling.get(k)} (spec {v})"
        for k, v in scaling_of(group).items()
        if scaling.get(k) != v
    ]
    if off:
        issues.append(Issue("drifted", f"{name} {', '.join(off)}"))
    if list(found.get("instanceTypes") or []) != list(group.instance_types):
        issues.append(
            Issue(
                "drifted",
                f"{name} instance types {','.join(found.get('instanceTypes') or [])} "
                f"(spec {','.join(group.instance_types)})",
            )
        )
    if found.get("capacityType") != group.capacity_type:
        issues.append(
            Issue(
                "drifted",
                f"{name} capacity {found.get('capacityType')} (spec {group.capacity_type})",
            )
        )
    labels = found.get("labels") or {}
    changed = sorted(k for k in {*labels, *group.labels} if labels.get(k) != group.labels.get(k))
    if changed:
        issues.append(Issue("drifted", f"{name} labels differ: {', '.join(changed)}"))
    return issues


def addon_issues(name: str, version: str | None, found: dict[str, Any] | None) -> list[Issue]:
    """``version``: the spec's pin, if any (otherwise EKS's default for the cluster)."""
    if found is None:
        return [Issue("missing", f"add-on {name} is missing")]
    issues = []
    codes = [i.get("code", "?") for i in (found.get("health") or {}).get("issues", [])]
    health = f" with health issues {', '.join(codes)}" if codes else ""
    if found.get("status") != "ACTIVE" or codes:
        issues.append(Issue("unhealthy", f"{name} is {found.get('status')}{health}"))
    if version and found.get("addonVersion") != version:
        issues.append(Issue("drifted", f"version {found.get('addonVersion')} (spec {version})"))
    return issues


def cluster_issues(name: str, found: dict[str, Any] | None, version: str) -> list[Issue]:
    """``version``: the Kubernetes version the spec resolves to (pinned or by strategy)."""
    if found is None:
        return [Issue("missing", f"cluster {name} is missing")]
    issues = []
    if found.get("status") != "ACTIVE":
        issues.append(Issue("unhealthy", f"cluster {name} is {found.get('status')}"))
    if found.get("version") != version:
        issues.append(
            Issue("drifted", f"Kubernetes {found.get('version')}, the spec resolves to {version}")
        )
    return issues


# What the StorageClass converger keeps equal (the API makes most of it immutable).
STORAGE_CLASS_FIELDS = (
    "provisioner",
    "parameters",
    "reclaimPolicy",
    "volumeBindingMode",
    "allowVolumeExpansion",
)


def storage_class_issues(wanted: dict[str, Any], found: dict[str, Any] | None) -> list[Issue]:
    name = wanted["metadata"]["name"]
    if found is None:
        return [Issue("missing", f"StorageClass {name} is missing")]
    fields = [k for k in STORAGE_CLASS_FIELDS if found.get(k) != wanted[k]]
    annotations = (found.get("metadata") or {}).get("annotations") or {}
    fields += [
        f"annotation {k}"
        for k, v in wanted["metadata"]["annotations"].items()
        if annotations.get(k) != v
    ]
    return [Issue("drifted", f"StorageClass {name}: {', '.join(fields)}")] if fields else []


def crd_issues(
    wanted: list[dict[str, Any]], found: Mapping[str, dict[str, Any] | None]
) -> list[Issue]:
    """``found``: each wanted CRD's name -> the cluster's copy (None when absent)."""
    names = [crd["metadata"]["name"] for crd in wanted]
    missing = [n for n in names if found.get(n) is None]
    stale = [
        crd["metadata"]["name"]
        for crd in wanted
        if (current := found.get(crd["metadata"]["name"])) is not None
        and not crd_in_sync(current, crd)
    ]
    issues = []
    if missing:
        issues.append(
            Issue("missing", f"{len(missing)} of {len(names)} CRDs missing: {_few(missing)}")
        )
    if stale:
        issues.append(Issue("drifted", f"CRDs differ from the chart's: {_few(stale)}"))
    return issues


def _few(names: list[str], limit: int = 3) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


@dataclass(frozen=True)
class NetworkView:
    """The platform's network as found by its tags."""

    vpc_id: str | None
    cidr: str | None = None
    subnets: dict[str, str] = field(default_factory=dict)  # part (e.g. private-<zone>) -> id
    security_group: str | None = None

    def network(self) -> Network:
        """What the cluster and its node groups are created with."""
        assert self.vpc_id is not None
        by_kind: dict[str, dict[str, str]] = {"public": {}, "private": {}}
        for part, subnet in self.subnets.items():
            kind, _, zone = part.partition("-")
            if kind in by_kind:
                by_kind[kind][zone] = subnet
        return Network(
            self.vpc_id,
            public_subnets=by_kind["public"],
            private_subnets=by_kind["private"],
            security_group=self.security_group or "",
        )


def network_issues(spec: PlatformSpec, view: NetworkView) -> list[Issue]:
    if view.vpc_id is None:
        return [Issue("missing", "no VPC tagged for the platform")]
    issues = []
    if view.cidr != spec.network.vpc_cidr:
        issues.append(Issue("drifted", f"VPC CIDR {view.cidr} (spec {spec.network.vpc_cidr})"))
    zones = spec.network.availability_zones
    parts = [f"{kind}-{zone}" for kind in ("public", "private") for zone in zones]
    missing = [p for p in parts if p not in view.subnets]
    if missing:
        issues.append(Issue("drifted", f"subnets missing: {', '.join(missing)}"))
    if not view.security_group:
        issues.append(Issue("drifted", "the cluster security group is missing"))
    return issues


def validation_finding(checks: list[dict[str, Any]]) -> Finding:
    """The guide's foundation validation as one row: each failed check with its value."""
    issues = [
        Issue("unhealthy", f"{c['name']} {c['value']} (expected {c['expected']})")
        for c in checks
        if not c["passed"]
    ]
    return finding(VALIDATION, "foundation", "validation", issues, f"{len(checks)} checks passed")


# ------------------------------------------------------------------------- reads


def read_network(spec: PlatformSpec, aws: AwsClients) -> NetworkView:
    ec2, mine = aws("ec2"), Identity.of(spec).filters(VPC_COMPONENT)
    with aws_call("ec2:DescribeVpcs"):
        vpcs = ec2.describe_vpcs(Filters=mine)["Vpcs"]
    if not vpcs:
        return NetworkView(None)
    vpc = vpcs[0]
    in_vpc = [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}, *mine]
    with aws_call("ec2:DescribeSubnets"):
        subnets = ec2.describe_subnets(Filters=in_vpc)["Subnets"]
    with aws_call("ec2:DescribeSecurityGroups"):
        groups = ec2.describe_security_groups(Filters=in_vpc)["SecurityGroups"]
    return NetworkView(
        vpc["VpcId"],
        vpc["CidrBlock"],
        {part: s["SubnetId"] for s in subnets if (part := tag_dict(s.get("Tags")).get(PART_TAG))},
        groups[0]["GroupId"] if groups else None,
    )


def read_roles(spec: PlatformSpec, aws: AwsClients) -> dict[str, str | None]:
    """The cluster and node roles: purpose -> ARN, None when missing."""
    iam, found = aws("iam"), {}
    for purpose, name in role_names(spec).items():
        try:
            with aws_call("iam:GetRole"):
                found[purpose] = iam.get_role(RoleName=name)["Role"]["Arn"]
        except AwsError as exc:
            if exc.code != "NoSuchEntity":
                raise
            found[purpose] = None
    return found


def expected_version(spec: PlatformSpec, aws: AwsClients) -> str:
    if spec.eks.version:
        return spec.eks.version
    return choose_version(offered_versions(aws), spec.eks.version_strategy, None)


def foundation_inputs(ctx: RunContext) -> dict[str, Any]:
    """The network, roles and cluster as they stand, by the component that makes them
    (vpc, iam, eks); only those that exist and are usable."""
    inputs: dict[str, Any] = {}
    view = read_network(ctx.spec, ctx.aws)
    if view.vpc_id is not None:
        inputs["vpc"] = view.network()
    roles = read_roles(ctx.spec, ctx.aws)
    if roles["cluster"] and roles["node"]:
        inputs["iam"] = Roles(roles["cluster"], roles["node"])
    found = describe_cluster(ctx.aws, ctx.spec.eks.cluster_name)
    if found is not None and found.get("status") == "ACTIVE":
        inputs["eks"] = Cluster(
            name=found["name"],
            arn=found["arn"],
            endpoint=found.get("endpoint", ""),
            version=found["version"],
            status=found["status"],
            certificate_authority=found.get("certificateAuthority", {}).get("data", ""),
            oidc_issuer=found.get("identity", {}).get("oidc", {}).get("issuer", ""),
            service_account_roles=service_account_roles(ctx),
        )
    return inputs


# ------------------------------------------------------------------ checks by kind

# A check returns the issues found and, for a healthy component, a short description.
Observation = tuple[list[Issue], str]


def _vpc(ctx: RunContext, component: Component, namespaces: dict[str, str]) -> Observation:
    view = read_network(ctx.spec, ctx.aws)
    return network_issues(ctx.spec, view), f"{view.vpc_id}, {len(view.subnets)} subnets"


def _iam(ctx: RunContext, component: Component, namespaces: dict[str, str]) -> Observation:
    roles = read_roles(ctx.spec, ctx.aws)
    names = role_names(ctx.spec)
    missing = [names[purpose] for purpose, arn in roles.items() if arn is None]
    issues = [Issue("missing", f"roles missing: {', '.join(missing)}")] if missing else []
    return issues, f"{len(roles)} roles"


def _eks(ctx: RunContext, component: Component, namespaces: dict[str, str]) -> Observation:
    name = ctx.spec.eks.cluster_name
    found = describe_cluster(ctx.aws, name)
    version = expected_version(ctx.spec, ctx.aws)
    return cluster_issues(name, found, version), f"ACTIVE, Kubernetes {version}"


def _node_groups(ctx: RunContext, component: Component, namespaces: dict[str, str]) -> Observation:
    eks, cluster = ctx.aws("eks"), ctx.spec.eks.cluster_name
    issues: list[Issue] = []
    for name, group in ctx.spec.node_groups.items():
        try:
            with aws_call("eks:DescribeNodegroup"):
                found = eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]
        except AwsError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
            found = None
        issues += node_group_issues(name, group, found)
    return issues, f"{len(ctx.spec.node_groups)} groups ACTIVE at spec sizes"


def _addon(ctx: RunContext, component: Component, namespaces: dict[str, str]) -> Observation:
    assert component.addon is not None
    found = describe_addon(ctx.aws, ctx.spec.eks.cluster_name, component.addon)
    settings = ctx.spec.addons.items.get(component.addon)
    issues = addon_issues(component.addon, settings.version if settings else None, found)
    return issues, f"ACTIVE {found.get('addonVersion') if found else ''}".strip()


def _storage_class(
    ctx: RunContext, component: Component, namespaces: dict[str, str]
) -> Observation:
    settings = ctx.spec.storage_class
    with ctx.kube() as api:
        try:
            found = api.sanitize_for_serialization(
                k8s.StorageV1Api(api).read_storage_class(settings.name)
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            found = None
        issues = storage_class_issues(storage_class_body(settings, volume_tags(ctx.spec)), found)
        if settings.snapshots:
            group, version, plural = SNAPSHOT
            try:
                k8s.CustomObjectsApi(api).get_cluster_custom_object(
                    group, version, plural, settings.snapshot_class_name
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
                issues.append(
                    Issue(
                        "drifted", f"VolumeSnapshotClass {settings.snapshot_class_name} is missing"
                    )
                )
    return issues, f"StorageClass {settings.name} as specified"


def _bucket(ctx: RunContext, component: Component, namespaces: dict[str, str]) -> Observation:
    assert component.storage is not None
    name = bucket_name(ctx.spec, component.storage, ctx.aws.account_id())
    try:
        with aws_call("s3:HeadBucket"):
            ctx.aws("s3").head_bucket(Bucket=name)
    except AwsError as exc:
        if exc.code not in ("404", "NoSuchBucket", "NotFound"):
            raise
        return [Issue("missing", f"bucket {name} is missing")], ""
    return [], f"bucket {name}"


def _release(ctx: RunContext, component: Component, namespaces: dict[str, str]) -> Observation:
    chart, namespace = component.chart, namespaces[component.name]
    assert chart is not None
    wanted = chart_values(component.name, values_context(ctx, namespaces))
    with ctx.kubeconfig() as kubeconfig:
        deployed = asyncio.run(
            deployed_release(
                helm=helm_binary(),
                kubeconfig=kubeconfig,
                release=chart.release,
                namespace=namespace,
            )
        )
    healthy = f"revision {deployed.revision} deployed" if deployed else ""
    return release_issues(chart, namespace, deployed, wanted), healthy


def _crds(ctx: RunContext, component: Component, namespaces: dict[str, str]) -> Observation:
    assert component.chart is not None
    wanted = asyncio.run(chart_crds(helm_binary(), component.chart, ctx.target.chart_repository))
    found: dict[str, dict[str, Any] | None] = {}
    with ctx.kube() as api:
        extensions = k8s.ApiextensionsV1Api(api)
        for crd in wanted:
            name = crd["metadata"]["name"]
            try:
                found[name] = api.sanitize_for_serialization(
                    extensions.read_custom_resource_definition(name)
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
                found[name] = None
    return crd_issues(wanted, found), f"{len(wanted)} CRDs in place"


def _gate(ctx: RunContext, component: Component, namespaces: dict[str, str]) -> Observation:
    try:
        _gate_check(ctx, component)  # one attempt: no retries, no budget
    except GateNotReady as exc:
        return [Issue("unhealthy", _first_line(exc))], ""
    return [], "passed"


CHECKS: dict[str, Callable[[RunContext, Component, dict[str, str]], Observation]] = {
    "vpc": _vpc,
    "iam": _iam,
    "eks-cluster": _eks,
    "node-groups": _node_groups,
    "eks-addon": _addon,
    "storage-class": _storage_class,
    "s3-bucket": _bucket,
    "helm-release": _release,
    "chart-crds": _crds,
    "gate": _gate,
}


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, ApiException):  # its text carries response headers and body
        return f"Kubernetes API {exc.status} {exc.reason}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@task(name="drift", task_run_name="{component.name}", cache_policy=NONE)
def detect_drift(ctx: RunContext, component: Component, namespaces: dict[str, str]) -> Finding:
    """Compare one component with the spec; changes nothing. A check that cannot read what
    it compares (no cluster, access refused) reports the component unhealthy, with why."""
    try:
        issues, healthy = CHECKS[component.kind](ctx, component, namespaces)
    except Exception as exc:
        get_run_logger().warning(
            "%s: cannot check: %s: %s", component.name, type(exc).__name__, _first_line(exc)
        )
        issues = [Issue("unhealthy", f"cannot check: {type(exc).__name__}: {_first_line(exc)}")]
        healthy = ""
    return finding(component.name, component.workflow, component.kind, issues, healthy)
