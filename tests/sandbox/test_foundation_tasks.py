"""The foundation's tasks against an in-process local AWS and Kubernetes simulator.

Convergence of every piece (network, IAM, OIDC, cluster, node groups, add-ons, storage),
idempotence, drift repair, the add-on ordering, the version choice, the sorting of AWS
errors into transient and permanent ones, and injected faults. (The same faults against
the tasks run by Prefect, retries included, are in tests/e2e/test_foundation_flow.py.)

One local AWS serves the whole module. Tests that need their own resources use their own
platform identity (``spec_named``), so that nothing they create or break is seen by the
others.
"""

from __future__ import annotations

import base64
import email
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError, WaiterError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.retries.bucket import TokenBucket
from botocore.retries.standard import ExponentialBackoff
from kubernetes import client as k8s

from blueprint.catalogue import load_catalogue
from blueprint.loader import load_spec
from blueprint.pace import Pace
from blueprint.spec import RUNNER_JOB_ACCOUNT, PlatformSpec, bucket_name
from sandbox.kube.nodes import CLUSTER_ANNOTATION
from sandbox.settings import Fault, SandboxSettings
from tasks.aws.addons import AddOn, _create_through_lag, ensure_addon
from tasks.aws.clients import AwsClients
from tasks.aws.eks import Cluster, choose_version, ensure_cluster, offered_versions
from tasks.aws.errors import (
    PermanentAwsError,
    TransientAwsError,
    aws_call,
    classify,
    is_transient,
)
from tasks.aws.iam import Roles, delete_roles, ensure_roles, ensure_service_account_roles
from tasks.aws.identity import Identity, tag_dict
from tasks.aws.inventory import aws_inventory
from tasks.aws.nodegroups import NodeGroups, delete_node_groups, ensure_node_groups
from tasks.aws.permissions import iam_policy
from tasks.aws.volumes import volume_tags
from tasks.aws.vpc import Network, ensure_network
from tasks.kube import api_client
from tasks.polling import poll_until
from tasks.storage import SNAPSHOT, ensure_storage_classes
from tasks.validation import foundation_checks
from tests.call_log import CallLog
from tests.sandbox.foundation_sandbox import (
    FAST,
    Sandbox,
    new_clients,
    spec_named,
)

pytestmark = pytest.mark.sandbox

EARLY_ADDONS = ("vpc-cni", "kube-proxy")  # need the cluster only
LATE_ADDONS = ("coredns", "aws-ebs-csi-driver", "snapshot-controller")  # need Ready nodes


# ---------------------------------------------------------------------------- helpers


def attempts_per_call(aws: AwsClients, service: str) -> int:
    """How many times botocore sends one call before giving up (its retries plus one)."""
    return aws(service).meta.config.retries["total_max_attempts"]


def client_error(code: str, status: int, message: str = "", operation: str = "Op") -> ClientError:
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)  # type: ignore[arg-type]


def by_key(tags: list[dict] | None, key: str) -> str | None:
    return tag_dict(tags).get(key)


def kube_through_eks(aws: AwsClients, spec: PlatformSpec) -> k8s.ApiClient:
    """The cluster's API the way real AWS reaches it: endpoint from EKS, a signed token."""
    return api_client(aws, spec.eks.cluster_name, None)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def sandbox_settings_restored(request: pytest.FixtureRequest) -> Iterator[None]:
    """Faults and latency a test sets do not outlive it."""
    yield
    if "sandbox" in request.fixturenames:
        settings: SandboxSettings = request.getfixturevalue("sandbox").settings
        settings.faults.clear()
        settings.latency.time_scale = 0.0


@pytest.fixture(scope="module")
def aws(sandbox: Sandbox) -> AwsClients:
    """Clients shared by the module's tests, the way a run's tasks share theirs."""
    return new_clients(sandbox)


@pytest.fixture
def fresh_aws(sandbox: Sandbox) -> AwsClients:
    """Clients of a test's own: faults leave retry state (rate limiter, retry quota) in the
    clients that met them."""
    return new_clients(sandbox)


@pytest.fixture
def instant_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore still retries every attempt, but its backoff and adaptive rate-limit sleeps
    take no time (9 attempts against a 503 would otherwise wait up to a minute)."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    monkeypatch.setattr(TokenBucket, "_sleep_amount", lambda self, amount: 0.0)


@dataclass
class Foundation:
    spec: PlatformSpec
    network: Network
    roles: Roles
    cluster: Cluster
    node_groups: NodeGroups
    addons: dict[str, AddOn]
    storage_changes: list[str]
    inventory: list[dict[str, str]] = field(default_factory=list)


def converge_all(spec: PlatformSpec, aws: AwsClients, pace: Pace) -> Foundation:
    """Every foundation piece in the order the catalogue's needs impose."""
    network = ensure_network(spec, aws)
    roles = ensure_roles(spec, aws)
    cluster = ensure_cluster(spec, aws, network, roles, pace)
    addons = {
        name: ensure_addon(spec, aws, name, cluster.version, cluster.service_account_roles, pace)
        for name in EARLY_ADDONS
    }
    groups = ensure_node_groups(spec, aws, network, roles.node_role_arn, pace)
    for name in LATE_ADDONS:
        addons[name] = ensure_addon(
            spec, aws, name, cluster.version, cluster.service_account_roles, pace
        )
    api = kube_through_eks(aws, spec)
    try:
        storage = ensure_storage_classes(api, spec.storage_class, pace, volume_tags(spec))
    finally:
        api.close()
    return Foundation(spec, network, roles, cluster, groups, addons, storage)


@pytest.fixture(scope="module")
def foundation(aws: AwsClients) -> Foundation:
    """The sandbox spec's foundation, converged once from nothing."""
    spec = load_spec("sandbox")
    converged = converge_all(spec, aws, FAST)
    converged.inventory = aws_inventory(spec, aws)
    return converged


@dataclass
class BareCluster:
    spec: PlatformSpec
    network: Network
    roles: Roles
    cluster: Cluster


@pytest.fixture(scope="module")
def bare_cluster(aws: AwsClients) -> BareCluster:
    """An ACTIVE cluster of its own platform, without node groups or add-ons."""
    spec = spec_named("bare")
    network = ensure_network(spec, aws)
    roles = ensure_roles(spec, aws)
    return BareCluster(spec, network, roles, ensure_cluster(spec, aws, network, roles, FAST))


# ------------------------------------------------------------------ convergence: network


def test_network_spans_the_spec_zones_with_tagged_subnets(foundation: Foundation, aws):
    spec, net = foundation.spec, foundation.network
    ec2 = aws("ec2")
    zones = spec.network.availability_zones
    assert len(set(zones)) == 3
    assert set(net.public_subnets) == set(zones) == set(net.private_subnets)

    vpc = ec2.describe_vpcs(VpcIds=[net.vpc_id])["Vpcs"][0]
    assert vpc["CidrBlock"] == spec.network.vpc_cidr
    for attribute in ("enableDnsSupport", "enableDnsHostnames"):
        answer = ec2.describe_vpc_attribute(VpcId=net.vpc_id, Attribute=attribute)
        assert answer[attribute[0].upper() + attribute[1:]]["Value"] is True, attribute

    cluster_tag = f"kubernetes.io/cluster/{spec.eks.cluster_name}"
    for kind, ids, cidrs, elb_tag in (
        ("public", net.public_subnets, spec.network.public_subnet_cidrs, "kubernetes.io/role/elb"),
        (
            "private",
            net.private_subnets,
            spec.network.private_subnet_cidrs,
            "kubernetes.io/role/internal-elb",
        ),
    ):
        for zone, cidr in zip(zones, cidrs, strict=True):
            subnet = ec2.describe_subnets(SubnetIds=[ids[zone]])["Subnets"][0]
            assert subnet["VpcId"] == net.vpc_id
            assert (subnet["AvailabilityZone"], subnet["CidrBlock"]) == (zone, cidr)
            assert by_key(subnet["Tags"], elb_tag) == "1", f"{kind} subnet in {zone}"
            assert by_key(subnet["Tags"], cluster_tag) == "shared"
            assert subnet["MapPublicIpOnLaunch"] is (kind == "public")


def test_network_routes_public_through_the_gateway_and_private_through_nat(
    foundation: Foundation, aws
):
    net, ec2 = foundation.network, aws("ec2")
    gateway = ec2.describe_internet_gateways(InternetGatewayIds=[net.internet_gateway])
    assert [a["VpcId"] for a in gateway["InternetGateways"][0]["Attachments"]] == [net.vpc_id]

    # nat_gateways: single -> one NAT, in the public subnet of the first zone
    first_zone = foundation.spec.network.availability_zones[0]
    assert list(net.nat_gateways) == [first_zone]
    nat = ec2.describe_nat_gateways(NatGatewayIds=[net.nat_gateways[first_zone]])
    nat = nat["NatGateways"][0]
    assert (nat["State"], nat["SubnetId"]) == ("available", net.public_subnets[first_zone])

    tables = {
        by_key(t["Tags"], "platform.io/part"): t
        for t in ec2.describe_route_tables(RouteTableIds=list(net.route_tables.values()))[
            "RouteTables"
        ]
    }
    assert set(tables) == {"public", "private"}

    def default_route(table: dict) -> dict:
        return next(r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0")

    def associated(table: dict) -> set[str]:
        return {a["SubnetId"] for a in table["Associations"] if a.get("SubnetId")}

    assert default_route(tables["public"])["GatewayId"] == net.internet_gateway
    assert default_route(tables["private"])["NatGatewayId"] == nat["NatGatewayId"]
    assert associated(tables["public"]) == set(net.public_subnets.values())
    assert associated(tables["private"]) == set(net.private_subnets.values())


def test_s3_is_reached_through_a_gateway_endpoint_not_nat(foundation: Foundation, aws):
    ec2, net = aws("ec2"), foundation.network
    (endpoint,) = ec2.describe_vpc_endpoints(VpcEndpointIds=[net.s3_endpoint])["VpcEndpoints"]
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert endpoint["ServiceName"] == f"com.amazonaws.{foundation.spec.platform.region}.s3"
    assert set(endpoint["RouteTableIds"]) == set(net.route_tables.values())
    for table in ec2.describe_route_tables(RouteTableIds=list(net.route_tables.values()))[
        "RouteTables"
    ]:
        assert net.s3_endpoint in {r.get("GatewayId") for r in table["Routes"]}


def test_security_group_lets_control_plane_and_nodes_talk(foundation: Foundation, aws):
    group_id = foundation.network.security_group
    group = aws("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert group["VpcId"] == foundation.network.vpc_id
    assert any(
        rule["IpProtocol"] == "-1"
        and any(pair["GroupId"] == group_id for pair in rule["UserIdGroupPairs"])
        for rule in group["IpPermissions"]
    )


# ---------------------------------------------------------------------- convergence: IAM


def attached(iam: Any, role: str) -> set[str]:
    return {
        p["PolicyArn"].rsplit("/", 1)[-1]
        for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    }


def test_cluster_and_node_roles_have_their_managed_policies(foundation: Foundation, aws):
    iam = aws("iam")
    cluster_role = iam.get_role(RoleName=foundation.roles.cluster_role_arn.rsplit("/", 1)[-1])
    node_role = iam.get_role(RoleName=foundation.roles.node_role_arn.rsplit("/", 1)[-1])

    def trusted(role: dict) -> list[str]:
        return [s["Principal"]["Service"] for s in role["AssumeRolePolicyDocument"]["Statement"]]

    assert trusted(cluster_role["Role"]) == ["eks.amazonaws.com"]
    assert trusted(node_role["Role"]) == ["ec2.amazonaws.com"]
    assert attached(iam, cluster_role["Role"]["RoleName"]) == {"AmazonEKSClusterPolicy"}
    assert attached(iam, node_role["Role"]["RoleName"]) == {
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryReadOnly",
    }
    # Any pod could use the node role through the instance metadata: it reaches no bucket.
    assert iam.list_role_policies(RoleName=node_role["Role"]["RoleName"])["PolicyNames"] == []


def test_oidc_provider_and_service_account_roles(foundation: Foundation, aws):
    iam, cluster = aws("iam"), foundation.cluster
    host = cluster.oidc_issuer.removeprefix("https://")
    assert cluster.oidc_issuer.startswith("https://") and host
    providers = [
        p["Arn"]
        for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
        if p["Arn"].endswith(f"oidc-provider/{host}")
    ]
    assert len(providers) == 1
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=providers[0])
    assert provider["ClientIDList"] == ["sts.amazonaws.com"]

    observability = foundation.spec.namespaces["observability"]
    assert foundation.spec.ingress.external_dns.provider == "cloudflare"
    # No Route 53 roles for external-dns and cert-manager: the DNS is Cloudflare's.
    expected_subjects = {
        "ebs-csi": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
        "mimir": f"system:serviceaccount:{observability}:mimir",
        "loki": f"system:serviceaccount:{observability}:loki",
        "runner": f"system:serviceaccount:{load_catalogue().component('runner').namespace}:"
        f"{RUNNER_JOB_ACCOUNT}",
    }
    assert set(cluster.service_account_roles) == set(expected_subjects)
    for suffix, subject in expected_subjects.items():
        name = cluster.service_account_roles[suffix].rsplit("/", 1)[-1]
        statement = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]["Statement"][0]
        assert statement["Principal"] == {"Federated": providers[0]}
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Condition"]["StringEquals"] == {
            f"{host}:sub": subject,
            f"{host}:aud": "sts.amazonaws.com",
        }
    ebs_role = cluster.service_account_roles["ebs-csi"].rsplit("/", 1)[-1]
    assert attached(iam, ebs_role) == {"AmazonEBSCSIDriverPolicy"}
    for part in ("mimir", "loki"):  # each writer reaches its own bucket, and only that
        role = cluster.service_account_roles[part].rsplit("/", 1)[-1]
        inline = iam.get_role_policy(RoleName=role, PolicyName=f"{role}-inline")
        resources = {r for s in inline["PolicyDocument"]["Statement"] for r in s["Resource"]}
        bucket = f"arn:aws:s3:::{bucket_name(foundation.spec, part, aws.account_id())}"
        assert resources == {bucket, f"{bucket}/*"}
    # The in-cluster runner does what any runner does: the policy `platformctl iam-policy`
    # prints, inline (inside IAM's 10 KB for a role's inline policies).
    role = cluster.service_account_roles["runner"].rsplit("/", 1)[-1]
    inline = iam.get_role_policy(RoleName=role, PolicyName=f"{role}-inline")["PolicyDocument"]
    assert inline == iam_policy(foundation.spec, aws.account_id())


def test_access_an_earlier_version_granted_is_taken_back(aws):
    """The node role's bucket policy and Route 53 roles for a Cloudflare DNS, as earlier
    versions made them: the next converge removes both."""
    spec = spec_named("legacy")
    me = Identity.of(spec)
    iam = aws("iam")
    node = ensure_roles(spec, aws).node_role_arn.rsplit("/", 1)[-1]
    iam.put_role_policy(
        RoleName=node,
        PolicyName=f"{node}-inline",
        PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        '"Action": "s3:*", "Resource": "*"}]}',
    )
    iam.create_role(
        RoleName=f"{me.prefix}-external-dns",
        AssumeRolePolicyDocument="{}",
        Tags=me.tag_list("iam", "external-dns"),
    )
    again = ensure_roles(spec, aws)
    assert again.changes == [f"removed inline policy of {node}"]
    assert iam.list_role_policies(RoleName=node)["PolicyNames"] == []
    _, changes = ensure_service_account_roles(
        spec, aws, "https://oidc.eks.us-east-1.amazonaws.com/id/LEGACY"
    )
    assert f"deleted role {me.prefix}-external-dns (not needed by the spec)" in changes
    names = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert f"{me.prefix}-external-dns" not in names
    assert {f"{me.prefix}-mimir", f"{me.prefix}-loki"} <= names
    delete_roles(spec, aws, "https://oidc.eks.us-east-1.amazonaws.com/id/LEGACY")


# ---------------------------------------------------------------------- convergence: EKS


def test_cluster_private_endpoint_logs_kept_seven_days_and_n_minus_1(foundation: Foundation, aws):
    spec, eks = foundation.spec, aws("eks")
    described = eks.describe_cluster(name=spec.eks.cluster_name)["cluster"]
    assert described["status"] == "ACTIVE"
    assert described["roleArn"] == foundation.roles.cluster_role_arn
    assert described["resourcesVpcConfig"]["endpointPrivateAccess"] is True
    # private-only, built from outside the VPC: public for the build CIDRs alone
    assert not spec.eks.endpoint_public_access
    assert described["resourcesVpcConfig"]["endpointPublicAccess"] is True
    assert described["resourcesVpcConfig"]["publicAccessCidrs"] == spec.eks.build_access_cidrs
    assert set(described["resourcesVpcConfig"]["subnetIds"]) == {
        *foundation.network.private_subnets.values(),
        *foundation.network.public_subnets.values(),
    }
    enabled = {
        kind
        for setup in described["logging"]["clusterLogging"]
        if setup["enabled"]
        for kind in setup["types"]
    }
    assert enabled == set(spec.eks.log_types)
    groups = aws("logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/eks/{spec.eks.cluster_name}/"
    )
    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups["logGroups"]] == [
        (f"/aws/eks/{spec.eks.cluster_name}/cluster", 7)
    ]

    # version: the spec has none, so the n-1 strategy picks the second newest standard one
    assert (spec.eks.version, spec.eks.version_strategy) == (None, "n-1")
    standard = sorted(
        (
            v["clusterVersion"]
            for v in eks.describe_cluster_versions()["clusterVersions"]
            if v["versionStatus"] == "STANDARD_SUPPORT"
        ),
        key=lambda v: tuple(int(p) for p in v.split(".")),
        reverse=True,
    )
    assert described["version"] == foundation.cluster.version == standard[1]


def test_node_groups_on_demand_system_and_diversified_spot_workload(foundation: Foundation, aws):
    spec, eks = foundation.spec, aws("eks")
    cluster = spec.eks.cluster_name
    assert sorted(eks.list_nodegroups(clusterName=cluster)["nodegroups"]) == ["system", "workload"]
    system = eks.describe_nodegroup(clusterName=cluster, nodegroupName="system")["nodegroup"]
    workload = eks.describe_nodegroup(clusterName=cluster, nodegroupName="workload")["nodegroup"]

    assert system["capacityType"] == "ON_DEMAND"
    assert system["instanceTypes"] == list(spec.node_groups["system"].instance_types)
    assert workload["capacityType"] == "SPOT"
    assert len(workload["instanceTypes"]) >= 2  # diversified over several instance types
    assert workload["instanceTypes"] == list(spec.node_groups["workload"].instance_types)
    for name, group in (("system", system), ("workload", workload)):
        wanted = spec.node_groups[name]
        assert group["status"] == "ACTIVE"
        assert group["scalingConfig"] == {
            "minSize": wanted.min_size,
            "maxSize": wanted.max_size,
            "desiredSize": wanted.desired_size,
        }
        assert group["labels"] == dict(wanted.labels)
        assert group["nodeRole"] == foundation.roles.node_role_arn
        assert set(group["subnets"]) == set(foundation.network.private_subnets.values())
        assert group["launchTemplate"]["id"].startswith("lt-")


def test_launch_templates_apply_the_node_reservations(foundation: Foundation, aws):
    spec = foundation.spec
    reserved = spec.resource_allocation.node
    for name in spec.node_groups:
        group = aws("eks").describe_nodegroup(
            clusterName=spec.eks.cluster_name, nodegroupName=name
        )["nodegroup"]
        version = aws("ec2").describe_launch_template_versions(
            LaunchTemplateId=group["launchTemplate"]["id"],
            Versions=[str(group["launchTemplate"]["version"])],
        )["LaunchTemplateVersions"][0]
        data = version["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required"

        message = email.message_from_string(base64.b64decode(data["UserData"]).decode())
        assert message.is_multipart()
        parts = [
            p for p in message.get_payload() if p.get_content_type() == "application/node.eks.aws"
        ]
        assert len(parts) == 1
        node_config = yaml.safe_load(parts[0].get_payload())
        assert node_config["kind"] == "NodeConfig"
        kubelet = node_config["spec"]["kubelet"]["config"]
        assert kubelet["kubeReserved"] == {
            "cpu": reserved.cpu_reserved,
            "memory": reserved.memory_reserved,
        }
        assert kubelet["evictionHard"] == {"memory.available": reserved.eviction_memory_available}
        assert kubelet["cpuManagerPolicy"] == reserved.cpu_manager_policy == "static"
        assert kubelet["cpuCFSQuota"] is True


def test_every_addon_active_and_ebs_csi_uses_its_service_account_role(foundation: Foundation, aws):
    spec = foundation.spec
    assert set(foundation.addons) == set(spec.addons.items)
    for name, addon in foundation.addons.items():
        assert (addon.status, addon.health) == ("ACTIVE", []), name
        assert addon.changes == [f"created add-on {name} {addon.version}"]
    described = aws("eks").describe_addon(
        clusterName=spec.eks.cluster_name, addonName="aws-ebs-csi-driver"
    )["addon"]
    assert described["serviceAccountRoleArn"] == foundation.cluster.service_account_roles["ebs-csi"]


# ------------------------------------------------------------------ convergence: storage


def test_gp3_storage_class_and_snapshot_class(foundation: Foundation, aws):
    settings = foundation.spec.storage_class
    assert foundation.storage_changes == [
        f"created StorageClass {settings.name}",
        f"created VolumeSnapshotClass {settings.snapshot_class_name}",
    ]
    api = kube_through_eks(aws, foundation.spec)
    try:
        storage = k8s.StorageV1Api(api)
        gp3 = storage.read_storage_class(settings.name)
        assert gp3.provisioner == "ebs.csi.aws.com"
        assert gp3.parameters["type"] == "gp3"
        assert gp3.parameters["encrypted"] == "true"
        assert gp3.allow_volume_expansion is True
        assert gp3.metadata.annotations["storageclass.kubernetes.io/is-default-class"] == "true"
        assert (gp3.reclaim_policy, gp3.volume_binding_mode) == ("Delete", "WaitForFirstConsumer")
        group, version, plural = SNAPSHOT
        snapshots = k8s.CustomObjectsApi(api).get_cluster_custom_object(
            group, version, plural, settings.snapshot_class_name
        )
        assert (snapshots["driver"], snapshots["deletionPolicy"]) == ("ebs.csi.aws.com", "Delete")

        # drift on a mutable field is patched back; nothing else changes
        storage.patch_storage_class(settings.name, {"allowVolumeExpansion": False})
        assert ensure_storage_classes(api, settings, FAST, volume_tags(foundation.spec)) == [
            f"updated StorageClass {settings.name}"
        ]
        assert storage.read_storage_class(settings.name).allow_volume_expansion is True
        assert ensure_storage_classes(api, settings, FAST, volume_tags(foundation.spec)) == []
    finally:
        api.close()


# --------------------------------------------------------------------------- validation


def test_validation_reports_every_check_with_its_value(foundation: Foundation, aws):
    spec = foundation.spec
    api = kube_through_eks(aws, spec)
    try:
        deadline = time.monotonic() + 20  # the simulator's nodes and pods settle in seconds
        while True:
            checks = foundation_checks(api, aws, spec.eks.cluster_name, spec.validation)
            if all(c.passed for c in checks) or time.monotonic() > deadline:
                break
            time.sleep(0.25)
    finally:
        api.close()
    by_name = {c.name: c for c in checks}
    assert list(by_name) == [
        "nodes_ready",
        "kube_system_running_pods",
        "cluster_info",
        "eks_status",
    ]
    assert all(c.passed for c in checks), checks
    assert isinstance(by_name["nodes_ready"].value, int)
    assert by_name["nodes_ready"].value >= spec.validation.min_nodes
    assert by_name["kube_system_running_pods"].value >= spec.validation.min_kube_system_running_pods
    assert str(by_name["cluster_info"].value).startswith("v1.")
    assert by_name["eks_status"].value == "ACTIVE"
    assert by_name["nodes_ready"].expected == f">= {spec.validation.min_nodes}"


def test_validation_failures_keep_their_measured_values(foundation: Foundation, aws):
    spec = foundation.spec
    strict = spec.validation.model_copy(update={"min_nodes": 1000})
    api = kube_through_eks(aws, spec)
    try:
        nodes = foundation_checks(api, aws, spec.eks.cluster_name, strict)[0]
    finally:
        api.close()
    assert (nodes.name, nodes.passed, nodes.expected) == ("nodes_ready", False, ">= 1000")
    assert isinstance(nodes.value, int) and nodes.value >= 3

    # an API that does not answer: each Kubernetes check fails with the cause as its value
    unreachable = k8s.Configuration()
    unreachable.host = "http://127.0.0.1:9"
    unreachable.retries = 0
    dead = k8s.ApiClient(unreachable)
    try:
        checks = foundation_checks(dead, aws, spec.eks.cluster_name, spec.validation)
    finally:
        dead.close()
    assert [(c.name, c.passed) for c in checks] == [
        ("nodes_ready", False),
        ("kube_system_running_pods", False),
        ("cluster_info", False),
        ("eks_status", True),
    ]
    assert all(str(c.value).startswith("error: ") for c in checks[:3])
    assert checks[3].value == "ACTIVE"


# ------------------------------------------------------------------------- idempotence


def test_rerun_makes_no_mutating_call_and_keeps_every_resource(foundation: Foundation, aws):
    log = CallLog()
    aws.register("before-call", log)
    again = converge_all(foundation.spec, aws, FAST)
    assert log.mutating() == []
    assert {"DescribeVpcs", "GetRole", "DescribeCluster", "DescribeNodegroup"} <= set(
        log.operations
    )
    changes = {
        "network": again.network.changes,
        "roles": again.roles.changes,
        "cluster": again.cluster.changes,
        "node groups": again.node_groups.changes,
        "add-ons": [c for a in again.addons.values() for c in a.changes],
        "storage": again.storage_changes,
    }
    assert changes == {key: [] for key in changes}
    assert again.network.as_dict() == {**foundation.network.as_dict(), "changes": []}
    assert aws_inventory(foundation.spec, aws) == foundation.inventory


# ------------------------------------------------------------------------- drift repair


def test_deleted_route_table_is_put_back(foundation: Foundation, aws):
    spec, ec2 = foundation.spec, aws("ec2")
    net = ensure_network(spec, aws)  # the current ids, whatever earlier tests did
    private = ec2.describe_route_tables(RouteTableIds=[net.route_tables["private"]])
    for association in private["RouteTables"][0]["Associations"]:
        ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
    ec2.delete_route_table(RouteTableId=net.route_tables["private"])

    repaired = ensure_network(spec, aws)
    new_id = repaired.route_tables["private"]
    assert new_id != net.route_tables["private"]
    assert f"created route table private {new_id}" in repaired.changes
    table = ec2.describe_route_tables(RouteTableIds=[new_id])["RouteTables"][0]
    assert {a["SubnetId"] for a in table["Associations"] if a.get("SubnetId")} == set(
        net.private_subnets.values()
    )
    default = [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    assert [r["NatGatewayId"] for r in default] == list(net.nat_gateways.values())
    # the S3 endpoint routes through the new table too
    endpoint = [r for r in table["Routes"] if r.get("GatewayId", "").startswith("vpce-")]
    assert [r["GatewayId"] for r in endpoint] == [net.s3_endpoint]
    # everything else was left alone, and the repaired network is stable
    assert all(
        c.startswith(
            ("created route table private", "default route of", "associated ", "S3 gateway")
        )
        for c in repaired.changes
    ), repaired.changes
    assert ensure_network(spec, aws).changes == []
    assert len(aws_inventory(spec, aws)) == len(foundation.inventory)


def test_node_group_scaled_off_spec_is_put_back(foundation: Foundation, aws):
    spec, eks = foundation.spec, aws("eks")
    cluster = spec.eks.cluster_name
    eks.update_nodegroup_config(
        clusterName=cluster,
        nodegroupName="system",
        scalingConfig={"minSize": 1, "maxSize": 6, "desiredSize": 5},
    )
    drifted = eks.describe_nodegroup(clusterName=cluster, nodegroupName="system")["nodegroup"]
    assert drifted["scalingConfig"]["desiredSize"] == 5

    log = CallLog()
    aws.register("before-call", log)
    repaired = ensure_node_groups(
        spec, aws, foundation.network, foundation.roles.node_role_arn, FAST
    )
    assert repaired.changes == ["node group system: scalingConfig back to spec"]
    assert log.mutating() == ["UpdateNodegroupConfig"]
    wanted = spec.node_groups["system"]
    assert eks.describe_nodegroup(clusterName=cluster, nodegroupName="system")["nodegroup"][
        "scalingConfig"
    ] == {
        "minSize": wanted.min_size,
        "maxSize": wanted.max_size,
        "desiredSize": wanted.desired_size,
    }


def test_endpoint_and_logging_drift_are_put_back_one_update_at_a_time(
    sandbox: Sandbox, aws, bare_cluster: BareCluster
):
    """Both drifted: two updates, each waited for (EKS refuses an update while another is
    in progress); public access and its CIDRs are compared too."""
    spec, name = bare_cluster.spec, bare_cluster.cluster.name
    eks = aws("eks")
    sandbox.settings.latency.time_scale = 0.05  # an update takes 0.15 s
    active = {"name": name, "WaiterConfig": {"Delay": 0.05, "MaxAttempts": 100}}
    eks.get_waiter("cluster_active").wait(**active)
    eks.update_cluster_config(
        name=name, logging={"clusterLogging": [{"types": ["api"], "enabled": False}]}
    )
    eks.get_waiter("cluster_active").wait(**active)
    eks.update_cluster_config(
        name=name,
        resourcesVpcConfig={"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]},
    )
    eks.get_waiter("cluster_active").wait(**active)

    log = CallLog()
    aws.register("before-call", log)
    cluster = ensure_cluster(spec, aws, bare_cluster.network, bare_cluster.roles, FAST)
    assert cluster.changes == [
        f"control-plane logs {sorted(spec.eks.log_types)}",
        "endpoint access",
    ]
    updates = [i for i, op in enumerate(log.operations) if op == "UpdateClusterConfig"]
    assert len(updates) == 2
    assert "DescribeUpdate" in log.operations[updates[0] : updates[1]]  # waited in between
    vpc = eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]
    assert (vpc["endpointPublicAccess"], vpc["endpointPrivateAccess"]) == (True, True)
    assert vpc["publicAccessCidrs"] == spec.eks.build_access_cidrs  # 0.0.0.0/0 taken back


def test_public_access_is_limited_to_the_spec_cidrs_and_kept_so(aws, bare_cluster: BareCluster):
    """Public access on: open to the spec's allow-list only, never EKS's default 0.0.0.0/0,
    and a widened list is narrowed again."""
    spec = spec_named(
        "allowlisted", endpoint_public_access=True, public_access_cidrs=["203.0.113.0/24"]
    )
    network, roles = bare_cluster.network, bare_cluster.roles
    name = spec.eks.cluster_name
    eks = aws("eks")
    ensure_cluster(spec, aws, network, roles, FAST)
    vpc = eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]
    assert (vpc["endpointPublicAccess"], vpc["publicAccessCidrs"]) == (True, ["203.0.113.0/24"])

    eks.update_cluster_config(name=name, resourcesVpcConfig={"publicAccessCidrs": ["0.0.0.0/0"]})
    eks.get_waiter("cluster_active").wait(name=name, WaiterConfig={"Delay": 0.05})
    again = ensure_cluster(spec, aws, network, roles, FAST)
    assert again.changes == ["endpoint access"]
    vpc = eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert ensure_cluster(spec, aws, network, roles, FAST).changes == []


# ---------------------------------------------------------------------- add-on ordering


def test_addon_ordering_around_node_groups(bare_cluster: BareCluster, aws, sandbox: Sandbox):
    spec, cluster = bare_cluster.spec, bare_cluster.cluster
    pace = Pace(time_scale=0.01, min_budget=0.5)  # the ACTIVE budget becomes half a second
    roles = cluster.service_account_roles

    # vpc-cni runs no Deployment: ACTIVE on a cluster without nodes
    cni = ensure_addon(spec, aws, "vpc-cni", cluster.version, roles, pace)
    assert (cni.status, cni.health) == ("ACTIVE", [])

    # coredns created before any node group stays DEGRADED; ensure_addon fails after its
    # budget with the add-on's health issue in the message
    began = time.monotonic()
    with pytest.raises(PermanentAwsError) as failed:
        ensure_addon(spec, aws, "coredns", cluster.version, roles, pace)
    assert time.monotonic() - began >= pace.min_budget
    assert failed.value.code == "DEGRADED"
    assert "InsufficientNumberOfReplicas" in str(failed.value)
    assert "eks add-on coredns" in str(failed.value)

    # once the node groups are ACTIVE, the same add-on becomes ACTIVE (nothing recreated)
    creates = sandbox.calls("eks:CreateAddon")
    ensure_node_groups(spec, aws, bare_cluster.network, bare_cluster.roles.node_role_arn, pace)
    coredns = ensure_addon(spec, aws, "coredns", cluster.version, roles, pace)
    assert (coredns.status, coredns.health, coredns.changes) == ("ACTIVE", [], [])
    assert sandbox.calls("eks:CreateAddon") == creates


def test_addon_creation_rides_out_an_addon_api_that_is_not_ready(
    bare_cluster: BareCluster, fresh_aws, sandbox: Sandbox, instant_retry_waits
):
    """The add-on API answering errors right after the cluster became ACTIVE, for longer
    than botocore's own attempts, is retried by ensure_addon rather than failed."""
    spec, cluster = bare_cluster.spec, bare_cluster.cluster
    unready = attempts_per_call(fresh_aws, "eks") + 1  # one whole botocore call, then one answer
    sandbox.settings.faults.add(Fault("aws-error", "eks:CreateAddon", count=unready))
    before = sandbox.calls("eks:CreateAddon")

    addon = ensure_addon(
        spec, fresh_aws, "kube-proxy", cluster.version, cluster.service_account_roles, FAST
    )
    assert addon.status == "ACTIVE"
    assert sandbox.calls("eks:CreateAddon") - before == unready + 1
    assert sandbox.settings.faults.list() == []


def test_addon_created_by_a_lost_attempt_is_taken_as_created(
    bare_cluster: BareCluster, aws, sandbox: Sandbox
):
    """A CreateAddon whose answer was lost leaves the add-on behind; the next attempt's
    'already exists' means done, not a reason to retry until the budget runs out."""
    cluster = bare_cluster.cluster
    aws("eks").create_addon(clusterName=cluster.name, addonName="aws-ebs-csi-driver")
    before = sandbox.calls("eks:CreateAddon")
    began = time.monotonic()
    _create_through_lag(aws, {"clusterName": cluster.name, "addonName": "aws-ebs-csi-driver"}, FAST)
    assert time.monotonic() - began < 2
    assert sandbox.calls("eks:CreateAddon") - before == 1


def test_waits_through_creating_states(sandbox: Sandbox, aws, bare_cluster: BareCluster):
    """With the sandbox's latency on, the cluster and its node groups are CREATING for a
    while; the tasks wait (polling) instead of failing or going on too early."""
    sandbox.settings.latency.time_scale = 0.05  # cluster 0.6 s, node group 0.25 s
    spec = spec_named("slow")
    log = CallLog()
    aws.register("before-call", log)
    began = time.monotonic()
    cluster = ensure_cluster(spec, aws, bare_cluster.network, bare_cluster.roles, FAST)
    assert time.monotonic() - began >= sandbox.settings.latency.seconds("eks_cluster")
    assert cluster.status == "ACTIVE" and cluster.endpoint
    assert log.operations.count("DescribeCluster") >= 3  # polled while CREATING
    ensure_addon(spec, aws, "vpc-cni", cluster.version, {}, FAST)  # nodes need the CNI
    began = time.monotonic()
    groups = ensure_node_groups(
        spec, aws, bare_cluster.network, bare_cluster.roles.node_role_arn, FAST
    )
    assert time.monotonic() - began >= sandbox.settings.latency.seconds("nodegroup")
    assert {g["status"] for g in groups.groups.values()} == {"ACTIVE"}


def cluster_nodes(aws: AwsClients, spec: PlatformSpec) -> list[Any]:
    with kube_through_eks(aws, spec) as api:
        nodes = k8s.CoreV1Api(api).list_node().items
    return [
        n for n in nodes if n.metadata.annotations.get(CLUSTER_ANNOTATION) == spec.eks.cluster_name
    ]


def node_readiness(node: Any) -> tuple[str, list[str]]:
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    return ready.status, [t.key for t in node.spec.taints or []]


def test_nodes_need_the_cni_add_on_as_on_eks(aws: AwsClients, sandbox: Sandbox):
    """The cluster is created without EKS's self-managed add-ons: node groups made before
    the vpc-cni add-on is ACTIVE fail with EKS's NodeCreationFailure (their nodes never
    become Ready); nodes that lose the CNI turn NotReady and unschedulable."""
    spec = spec_named("nocni")
    network, roles = ensure_network(spec, aws), ensure_roles(spec, aws)
    cluster = ensure_cluster(spec, aws, network, roles, FAST)
    with pytest.raises(PermanentAwsError) as failed:
        ensure_node_groups(spec, aws, network, roles.node_role_arn, FAST)
    assert "CREATE_FAILED; NodeCreationFailure: Instances failed to join" in str(failed.value)
    assert cluster_nodes(aws, spec) == []
    delete_node_groups(spec, aws, FAST)

    ensure_addon(spec, aws, "vpc-cni", cluster.version, {}, FAST)
    ensure_node_groups(spec, aws, network, roles.node_role_arn, FAST)
    poll_until(lambda: cluster_nodes(aws, spec) or None, 10, 0.1, "nodes joined")
    for node in cluster_nodes(aws, spec):
        status, taints = node_readiness(node)
        assert status == "True" and "node.kubernetes.io/not-ready" not in taints

    aws("eks").delete_addon(clusterName=cluster.name, addonName="vpc-cni")
    poll_until(
        lambda: all(node_readiness(n)[0] == "False" for n in cluster_nodes(aws, spec)) or None,
        10,
        0.1,
        "nodes NotReady",
    )
    for node in cluster_nodes(aws, spec):
        assert "node.kubernetes.io/not-ready" in node_readiness(node)[1]
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert "cni plugin not initialized" in ready.message
    delete_node_groups(spec, aws, FAST)


def test_an_add_on_is_never_moved_back_to_an_older_version(
    bare_cluster: BareCluster, aws, sandbox: Sandbox
):
    spec, cluster = bare_cluster.spec, bare_cluster.cluster
    default = ensure_addon(spec, aws, "kube-proxy", cluster.version, {}, FAST).version
    eks = aws("eks")
    newest = eks.describe_addon_versions(addonName="kube-proxy", kubernetesVersion=cluster.version)[
        "addons"
    ][0]["addonVersions"][0]["addonVersion"]
    assert newest != default
    eks.update_addon(clusterName=cluster.name, addonName="kube-proxy", addonVersion=newest)

    def active() -> bool | None:
        addon = eks.describe_addon(clusterName=cluster.name, addonName="kube-proxy")["addon"]
        return addon["status"] == "ACTIVE" or None

    poll_until(active, 10, 0.05, "kube-proxy updated")
    with pytest.raises(ClientError, match="cannot be downgraded"):  # EKS refuses it
        eks.update_addon(clusterName=cluster.name, addonName="kube-proxy", addonVersion=default)
    # and the platform does not ask for it
    updates = sandbox.calls("eks:UpdateAddon")
    kept = ensure_addon(spec, aws, "kube-proxy", cluster.version, {}, FAST)
    assert kept.version == newest
    assert kept.changes == [f"add-on kube-proxy runs {newest}, newer than {default}: kept"]
    assert sandbox.calls("eks:UpdateAddon") == updates


# ---------------------------------------------------------------------- version choice


@pytest.fixture(scope="module")
def offered(aws: AwsClients) -> list[dict[str, Any]]:
    """What DescribeClusterVersions answers, as the product reads it."""
    return offered_versions(aws)


def standard_versions(offered: list[dict[str, Any]]) -> list[str]:
    versions = [v["clusterVersion"] for v in offered if v["versionStatus"] == "STANDARD_SUPPORT"]
    return sorted(versions, key=lambda v: tuple(int(p) for p in v.split(".")), reverse=True)


@pytest.mark.parametrize(("strategy", "back"), [("latest", 0), ("n-1", 1), ("n-2", 2)])
def test_version_by_strategy(offered, strategy: str, back: int):
    standard = standard_versions(offered)
    assert len(standard) >= 3
    assert choose_version(offered, strategy, None) == standard[back]


def test_explicit_version_wins_over_strategy(offered):
    oldest = min(
        (v["clusterVersion"] for v in offered), key=lambda v: tuple(int(p) for p in v.split("."))
    )
    assert choose_version(offered, "latest", oldest) == oldest


def test_explicit_version_not_offered_is_a_permanent_error(offered):
    with pytest.raises(PermanentAwsError) as failed:
        choose_version(offered, "n-1", "1.20")
    assert failed.value.code == "UnsupportedVersion"
    assert failed.value.transient is False
    assert "1.20" in str(failed.value)
    assert all(v["clusterVersion"] in str(failed.value) for v in offered)


def test_strategy_never_picks_a_version_in_extended_support(offered):
    without = [v for v in offered if v["clusterVersion"] != standard_versions(offered)[2]]
    chosen = choose_version(without, "n-2", None)
    status = {v["clusterVersion"]: v["versionStatus"] for v in without}
    assert status[chosen] == "STANDARD_SUPPORT"


def test_cluster_runs_the_explicit_version(sandbox: Sandbox, aws, bare_cluster: BareCluster):
    oldest_standard = standard_versions(offered_versions(aws))[-1]
    spec = spec_named("pinned", version=oldest_standard)
    cluster = ensure_cluster(spec, aws, bare_cluster.network, bare_cluster.roles, FAST)
    assert cluster.version == oldest_standard != bare_cluster.cluster.version


def test_cluster_with_a_version_not_offered_is_never_created(sandbox: Sandbox, aws):
    spec = spec_named("unoffered", version="1.20")
    creates = sandbox.calls("eks:CreateCluster")
    with pytest.raises(PermanentAwsError, match="UnsupportedVersion"):
        ensure_cluster(spec, aws, Network("vpc-unused"), Roles("arn:unused", "arn:unused"), FAST)
    assert sandbox.calls("eks:CreateCluster") == creates


def test_failed_cluster_is_a_permanent_error(sandbox: Sandbox, aws, bare_cluster: BareCluster):
    spec = spec_named("doomed")
    sandbox.settings.faults.add(Fault("eks-create-fails", spec.eks.cluster_name))
    args = (spec, aws, bare_cluster.network, bare_cluster.roles, FAST)
    began = time.monotonic()
    with pytest.raises(PermanentAwsError, match="terminal failure state"):
        ensure_cluster(*args)
    assert time.monotonic() - began < FAST.min_budget  # not waited out
    with pytest.raises(PermanentAwsError) as again:
        ensure_cluster(*args)
    assert again.value.code == "ClusterFailed"


# ------------------------------------------------------ transient versus permanent errors

TRANSIENT = [
    ("ThrottlingException", 400, "Rate exceeded"),
    ("Throttling", 400, "Rate exceeded"),
    ("RequestLimitExceeded", 503, "Request limit exceeded."),
    ("InternalError", 500, "An internal error has occurred"),
    ("ServiceUnavailable", 503, "Service is unable to handle request."),
    ("SomeNewServerFault", 502, "Bad gateway"),
    ("DependencyViolation", 400, "The subnet has dependencies and cannot be deleted."),
    (
        "InvalidParameterException",
        400,
        "Role with arn: arn:aws:iam::123456789012:role/platform-eks-cluster, could not be "
        "assumed because it does not exist or the trusted entity is not correct",
    ),
]
PERMANENT = [
    ("AccessDenied", 403, "User is not authorized to perform: iam:CreateRole"),
    ("AccessDeniedException", 403, "User is not authorized to perform: eks:CreateCluster"),
    ("UnauthorizedOperation", 403, "You are not authorized to perform this operation."),
    ("InvalidParameterValue", 400, "Value (x) for parameter cidrBlock is invalid."),
    ("LimitExceeded", 409, "Cannot exceed quota for RolesPerAccount: 1000"),
    ("InvalidParameterException", 400, "Subnets must be in at least two different AZs."),
]


@pytest.mark.parametrize(("code", "status", "message"), TRANSIENT)
def test_transient_errors(code: str, status: int, message: str):
    error = client_error(code, status, message)
    assert is_transient(error) is True
    classified = classify("svc:Op", error)
    assert isinstance(classified, TransientAwsError) and classified.transient
    assert (classified.action, classified.code, classified.aws_message) == ("svc:Op", code, message)
    assert str(classified) == f"svc:Op failed: {code}: {message}"


@pytest.mark.parametrize(("code", "status", "message"), PERMANENT)
def test_permanent_errors(code: str, status: int, message: str):
    error = client_error(code, status, message)
    assert is_transient(error) is False
    classified = classify("svc:Op", error)
    assert isinstance(classified, PermanentAwsError) and not classified.transient
    assert code in str(classified) and message in str(classified)


def test_errors_that_are_not_client_errors():
    lost = classify("ec2:DescribeVpcs", BotoConnectionError(error="connection reset"))
    assert isinstance(lost, TransientAwsError)
    failed_state = WaiterError(
        name="ClusterActive",
        reason="Waiter encountered a terminal failure state: For expression "
        '"cluster.status" we matched expected path: "FAILED"',
        last_response={"cluster": {"status": "FAILED"}},
    )
    assert isinstance(classify("eks:DescribeCluster", failed_state), PermanentAwsError)
    # Out of attempts, the budget was the waiter's: permanent, with what it last saw.
    degraded = {
        "nodegroup": {
            "status": "DEGRADED",
            "health": {"issues": [{"code": "NodeCreationFailure", "message": "no capacity"}]},
        }
    }
    out_of_time = WaiterError(
        name="NodegroupActive", reason="Max attempts exceeded", last_response=degraded
    )
    classified = classify("eks:DescribeNodegroup", out_of_time)
    assert isinstance(classified, PermanentAwsError)
    assert "status DEGRADED; NodeCreationFailure: no capacity" in str(classified)
    throttled = WaiterError(
        name="ClusterActive",
        reason="Unexpected error encountered",
        last_response={"Error": {"Code": "ThrottlingException"}},
    )
    assert isinstance(classify("eks:DescribeCluster", throttled), TransientAwsError)
    with pytest.raises(ValueError):
        classify("anything", ValueError("not an AWS error"))


def test_aws_call_translates_and_keeps_the_cause():
    cause = client_error("AccessDenied", 403, "no")
    with pytest.raises(PermanentAwsError) as raised, aws_call("iam:CreateRole"):
        raise cause
    assert raised.value.__cause__ is cause
    assert str(raised.value) == "iam:CreateRole failed: AccessDenied: no"


# --------------------------------------------------------------------------- injected faults


def test_throttling_is_absorbed_by_botocore_adaptive_retries(
    sandbox: Sandbox, fresh_aws, instant_retry_waits
):
    assert fresh_aws("ec2").meta.config.retries["mode"] == "adaptive"
    spec = spec_named("throttled")
    sandbox.settings.faults.add(Fault("aws-throttle", "ec2:CreateVpc", count=3))
    before = sandbox.calls("ec2:CreateVpc")
    log = CallLog()
    fresh_aws.register("before-call", log)

    network = ensure_network(spec, fresh_aws)

    assert network.vpc_id.startswith("vpc-")
    assert log.operations.count("CreateVpc") == 1  # one call from the task ...
    assert sandbox.calls("ec2:CreateVpc") - before == 4  # ... three throttled attempts inside
    assert sandbox.settings.faults.list() == []
    mine = [r for r in aws_inventory(spec, fresh_aws) if r["type"] == "vpc"]
    assert [r["id"] for r in mine] == [network.vpc_id]


def test_permanent_error_fails_fast_with_its_code(sandbox: Sandbox, fresh_aws):
    spec = spec_named("denied")
    sandbox.settings.faults.add(Fault("aws-denied", "iam:CreateRole"))
    before = sandbox.calls("iam:CreateRole")
    began = time.monotonic()
    with pytest.raises(PermanentAwsError) as failed:
        ensure_roles(spec, fresh_aws)
    assert time.monotonic() - began < 2
    assert sandbox.calls("iam:CreateRole") - before == 1  # not retried, not even by botocore
    assert failed.value.code == "AccessDenied"
    assert str(failed.value).startswith("iam:CreateRole failed: AccessDenied: ")
    assert "not authorized" in str(failed.value)
