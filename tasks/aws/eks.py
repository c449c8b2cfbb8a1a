"""The EKS control plane: version by strategy, private endpoint, control-plane logs with
their retention, and (once ACTIVE) the OIDC provider with the service-account roles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from blueprint.pace import Pace
from blueprint.spec import PlatformSpec
from tasks.aws import access
from tasks.aws.clients import AwsClients
from tasks.aws.errors import AwsError, PermanentAwsError, aws_call, create_or_adopt
from tasks.aws.iam import Roles, ensure_service_account_roles
from tasks.aws.identity import Identity
from tasks.aws.updates import wait_update
from tasks.aws.vpc import Network
from tasks.runner import building_from_outside

COMPONENT = "eks"
CREATE_BUDGET_SECONDS = 25 * 60  # guide: 12-15 min; field reports up to 15
OPEN = "0.0.0.0/0"


@dataclass
class Cluster:
    name: str
    arn: str
    endpoint: str
    version: str
    status: str
    certificate_authority: str
    oidc_issuer: str
    service_account_roles: dict[str, str] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)


def _minor(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def choose_version(offered: list[dict[str, Any]], strategy: str, explicit: str | None) -> str:
    """The Kubernetes version to create: the explicit one if offered, else by strategy
    among the versions in standard support (latest, n-1, n-2)."""
    versions = sorted({v["clusterVersion"] for v in offered}, key=_minor, reverse=True)
    if not versions:
        raise PermanentAwsError("choose version", "NoVersions", "EKS offers no versions")
    if explicit:
        if explicit not in versions:
            raise PermanentAwsError(
                "choose version",
                "UnsupportedVersion",
                f"eks.version {explicit} is not offered; offered: {', '.join(versions)}",
            )
        return explicit
    standard = (
        sorted(
            {v["clusterVersion"] for v in offered if _standard_support(v)}, key=_minor, reverse=True
        )
        or versions
    )
    back = {"latest": 0, "n-1": 1, "n-2": 2}[strategy]
    return standard[min(back, len(standard) - 1)]


def _standard_support(version: dict[str, Any]) -> bool:
    # ``versionStatus`` is current; the older ``status`` says "standard-support".
    return (
        version.get("versionStatus") == "STANDARD_SUPPORT"
        or version.get("status") == "standard-support"
    )


def offered_versions(aws: AwsClients) -> list[dict[str, Any]]:
    with aws_call("eks:DescribeClusterVersions"):
        pages = aws("eks").get_paginator("describe_cluster_versions").paginate()
        return [v for page in pages for v in page["clusterVersions"]]


def describe_cluster(aws: AwsClients, name: str) -> dict[str, Any] | None:
    try:
        with aws_call("eks:DescribeCluster"):
            return aws("eks").describe_cluster(name=name)["cluster"]
    except AwsError as exc:
        if exc.code == "ResourceNotFoundException":
            return None
        raise


def owned_cluster(spec: PlatformSpec, aws: AwsClients) -> dict[str, Any] | None:
    """The spec's cluster if it exists, once it is known to be the platform's (a cluster of
    that name without the platform's tags stops the caller: ``NotOurs``)."""
    cluster = describe_cluster(aws, spec.eks.cluster_name)
    if cluster is not None:
        Identity.of(spec).claim("EKS cluster", spec.eks.cluster_name, cluster.get("tags"))
    return cluster


def _log_group(spec: PlatformSpec, aws: AwsClients, changes: list[str]) -> None:
    """EKS writes control-plane logs to this group; creating it first sets its retention
    before the first log line (EKS would create it with retention 'never expire')."""
    logs = aws("logs")
    name = f"/aws/eks/{spec.eks.cluster_name}/cluster"
    days = spec.eks.log_retention_days
    with aws_call("logs:DescribeLogGroups"):
        groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    group = next((g for g in groups if g["logGroupName"] == name), None)
    if group is None and create_or_adopt(
        "logs:CreateLogGroup",
        lambda: logs.create_log_group(
            logGroupName=name, tags=Identity.of(spec).tags(COMPONENT, "control-plane-logs")
        ),
        "ResourceAlreadyExistsException",
    ):
        changes.append(f"created log group {name}")
    if group is None or group.get("retentionInDays") != days:
        with aws_call("logs:PutRetentionPolicy"):
            logs.put_retention_policy(logGroupName=name, retentionInDays=days)
        changes.append(f"log retention {days} days")


def _vpc_config(spec: PlatformSpec, network: Network) -> dict[str, Any]:
    return {
        "subnetIds": [*network.private_subnets.values(), *network.public_subnets.values()],
        "securityGroupIds": [network.security_group],
        **endpoint_access(spec),
    }


def endpoint_access(spec: PlatformSpec, building: bool | None = None) -> dict[str, Any]:
    """The endpoint settings EKS should hold: public access, where on, open only to the
    spec's CIDRs (EKS's default, when none are given, is 0.0.0.0/0). A private-only
    endpoint built from outside the VPC (``building``; default: whether this run is) is
    public for the build CIDRs alone."""
    eks = spec.eks
    if building is None:
        building = building_from_outside(spec)
    access: dict[str, Any] = {
        "endpointPrivateAccess": eks.endpoint_private_access,
        "endpointPublicAccess": eks.endpoint_public_access or building,
    }
    if access["endpointPublicAccess"]:
        cidrs = eks.build_access_cidrs if building else eks.public_access_cidrs
        access["publicAccessCidrs"] = sorted(cidrs or [OPEN])
    return access


def _reconcile_config(
    spec: PlatformSpec, aws: AwsClients, cluster: dict, pace: Pace, changes: list[str]
) -> None:
    """Logging, then endpoint access: two updates, each waited for before the next (EKS
    runs one update of a cluster at a time)."""
    eks = aws("eks")
    wanted_logs = set(spec.eks.log_types)
    enabled = {
        t
        for setup in cluster.get("logging", {}).get("clusterLogging", [])
        if setup.get("enabled")
        for t in setup.get("types", [])
    }
    if enabled != wanted_logs:
        disable = sorted(enabled - wanted_logs)
        setups = [{"types": sorted(wanted_logs), "enabled": True}]
        if disable:
            setups.append({"types": disable, "enabled": False})
        with aws_call("eks:UpdateClusterConfig"):
            update = eks.update_cluster_config(
                name=cluster["name"], logging={"clusterLogging": setups}
            )["update"]
        wait_update(aws, cluster["name"], update, pace)
        changes.append(f"control-plane logs {sorted(wanted_logs)}")
    if converge_endpoint(spec, aws, cluster, pace):
        changes.append("endpoint access")


def converge_endpoint(
    spec: PlatformSpec, aws: AwsClients, cluster: dict, pace: Pace, building: bool | None = None
) -> bool:
    """Put the endpoint's access where ``endpoint_access`` says, an update waited for;
    True when it changed."""
    vpc = cluster.get("resourcesVpcConfig", {})
    access = endpoint_access(spec, building)
    current = {**vpc, "publicAccessCidrs": sorted(vpc.get("publicAccessCidrs") or [OPEN])}
    if all(current.get(k) == v for k, v in access.items()):
        return False
    with aws_call("eks:UpdateClusterConfig"):
        update = aws("eks").update_cluster_config(name=cluster["name"], resourcesVpcConfig=access)
    wait_update(aws, cluster["name"], update["update"], pace)
    return True


def hand_over(spec: PlatformSpec, aws: AwsClients, pace: Pace) -> list[str]:
    """Switch the build access off: from now on the API answers inside the VPC only, where
    the in-cluster worker runs the platform's flows."""
    cluster = owned_cluster(spec, aws)
    if cluster is None or not converge_endpoint(spec, aws, cluster, pace, building=False):
        return []
    return [f"endpoint of {cluster['name']}: public access off, handed to the in-cluster worker"]


def handed_over(spec: PlatformSpec, cluster: dict | None) -> bool:
    """Whether the cluster is in its in-cluster worker's hands: a private-only spec whose
    build ends in a hand-over, and an endpoint with public access off (only the hand-over,
    or a run inside the VPC, switches off what a build from outside opens)."""
    if cluster is None or not spec.runner.hand_over or spec.eks.endpoint_public_access:
        return False
    return not cluster.get("resourcesVpcConfig", {}).get("endpointPublicAccess", True)


def wait_active(aws: AwsClients, name: str, pace: Pace, budget: float) -> dict[str, Any]:
    with aws_call("eks:DescribeCluster (wait ACTIVE)"):
        aws("eks").get_waiter("cluster_active").wait(
            name=name, WaiterConfig=pace.waiter_config(30, budget)
        )
    cluster = describe_cluster(aws, name)
    assert cluster is not None
    return cluster


def ensure_cluster(
    spec: PlatformSpec, aws: AwsClients, network: Network, roles: Roles, pace: Pace
) -> Cluster:
    """Create the control plane if missing, wait for ACTIVE, converge its settings."""
    name = spec.eks.cluster_name
    changes: list[str] = []
    cluster = owned_cluster(spec, aws)
    _log_group(spec, aws, changes)
    created = cluster is None
    if cluster is None:
        version = choose_version(offered_versions(aws), spec.eks.version_strategy, spec.eks.version)
        # ResourceInUseException: created by an earlier attempt, or a run that was killed
        created = (
            create_or_adopt(
                "eks:CreateCluster",
                lambda: aws("eks").create_cluster(
                    name=name,
                    version=version,
                    roleArn=roles.cluster_role_arn,
                    resourcesVpcConfig=_vpc_config(spec, network),
                    logging={
                        "clusterLogging": [{"types": list(spec.eks.log_types), "enabled": True}]
                    },
                    # The platform installs vpc-cni, kube-proxy and coredns as managed add-ons.
                    bootstrapSelfManagedAddons=False,
                    accessConfig={
                        "authenticationMode": access.MODE,
                        "bootstrapClusterCreatorAdminPermissions": True,
                    },
                    tags=Identity.of(spec).tags(COMPONENT),
                ),
                "ResourceInUseException",
            )
            is not None
        )
        if created:
            changes.append(f"created cluster {name} (Kubernetes {version})")
    elif cluster["status"] == "FAILED":
        raise PermanentAwsError(
            "eks:DescribeCluster", "ClusterFailed", f"cluster {name} is FAILED; tear down and retry"
        )
    cluster = wait_active(aws, name, pace, CREATE_BUDGET_SECONDS)
    Identity.of(spec).claim("EKS cluster", name, cluster.get("tags"))  # if adopted just now
    if not created:
        _reconcile_config(spec, aws, cluster, pace, changes)
        access.authentication_mode(aws, cluster, pace, changes)
        if spec.eks.version and spec.eks.version != cluster["version"]:
            changes.append(
                f"version drift: running {cluster['version']}, spec {spec.eks.version} "
                "(upgrade with a planned update, not at convergence)"
            )
    issuer = cluster.get("identity", {}).get("oidc", {}).get("issuer", "")
    sa_roles: dict[str, str] = {}
    if issuer:
        sa_roles, sa_changes = ensure_service_account_roles(spec, aws, issuer)
        changes += sa_changes
    # The in-cluster runner's flows act as its role: it is an admin like the spec's.
    admins = [*spec.eks.admin_principals, *filter(None, [sa_roles.get("runner")])]
    changes += access.ensure_access_entries(spec, aws, name, admins)
    return Cluster(
        name=name,
        arn=cluster["arn"],
        endpoint=cluster.get("endpoint", ""),
        version=cluster["version"],
        status=cluster["status"],
        certificate_authority=cluster.get("certificateAuthority", {}).get("data", ""),
        oidc_issuer=issuer,
        service_account_roles=sa_roles,
        changes=changes,
    )


def delete_cluster(spec: PlatformSpec, aws: AwsClients, pace: Pace) -> list[str]:
    """Delete the cluster (its node groups and add-ons must be gone) and its log group."""
    name = spec.eks.cluster_name
    done = []
    if owned_cluster(spec, aws) is not None:
        with aws_call("eks:DeleteCluster"):
            aws("eks").delete_cluster(name=name)
        with aws_call("eks:DescribeCluster (wait deleted)"):
            aws("eks").get_waiter("cluster_deleted").wait(
                name=name, WaiterConfig=pace.waiter_config(30, 20 * 60)
            )
        done.append(f"cluster {name}")
    logs = aws("logs")
    group = f"/aws/eks/{name}/cluster"
    with aws_call("logs:DescribeLogGroups"):
        groups = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    if any(g["logGroupName"] == group for g in groups):
        with aws_call("logs:DeleteLogGroup"):
            logs.delete_log_group(logGroupName=group)
        done.append(f"log group {group}")
    return done
