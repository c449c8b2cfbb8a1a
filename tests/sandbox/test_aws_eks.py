"""The local EKS with boto3: clusters, node groups, the add-on API, versions, cluster source."""

from __future__ import annotations

import base64

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography import x509

from sandbox.aws.server import LocalAws
from sandbox.cluster import AddonInfo
from sandbox.settings import SandboxSettings

pytestmark = pytest.mark.sandbox

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/eks-cluster"
NODE_ROLE = "arn:aws:iam::123456789012:role/eks-node"
FAST = {"Delay": 0.05, "MaxAttempts": 100}


@pytest.fixture(scope="module")
def aws():
    with LocalAws(SandboxSettings()) as local:
        yield local


@pytest.fixture(scope="module")
def eks(aws):
    return boto3.client(
        "eks",
        endpoint_url=aws.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def make_cluster(eks, name: str, version: str | None = "1.33") -> dict:
    args = {"version": version} if version else {}
    cluster = eks.create_cluster(
        name=name, roleArn=ROLE, resourcesVpcConfig={"subnetIds": ["subnet-a", "subnet-b"]}, **args
    )["cluster"]
    eks.get_waiter("cluster_active").wait(name=name, WaiterConfig=FAST)
    return cluster


def make_nodegroup(eks, cluster: str, name: str, desired: int = 2, **extra) -> dict:
    group = eks.create_nodegroup(
        clusterName=cluster,
        nodegroupName=name,
        nodeRole=NODE_ROLE,
        subnets=["subnet-a", "subnet-b"],
        scalingConfig={"minSize": 0, "maxSize": 6, "desiredSize": desired},
        **extra,
    )["nodegroup"]
    eks.get_waiter("nodegroup_active").wait(
        clusterName=cluster, nodegroupName=name, WaiterConfig=FAST
    )
    return group


def error_of(call, *args, **kwargs) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    error = caught.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], str(caught.value)


# ---------------------------------------------------------------- clusters, node groups


def test_cluster_and_spot_nodegroup_with_three_instance_types(aws, eks):
    make_cluster(eks, "prod")
    cluster = eks.describe_cluster(name="prod")["cluster"]
    assert cluster["status"] == "ACTIVE"
    assert cluster["version"] == "1.33"
    group = make_nodegroup(
        eks,
        "prod",
        "workload-spot",
        capacityType="SPOT",
        instanceTypes=["m6i.large", "m5.large", "m5a.large"],
        labels={"role": "workload"},
        taints=[{"key": "spot", "value": "true", "effect": "PREFER_NO_SCHEDULE"}],
    )
    assert group["version"] == "1.33"  # the cluster's version, as on EKS
    described = eks.describe_nodegroup(clusterName="prod", nodegroupName="workload-spot")
    assert described["nodegroup"]["status"] == "ACTIVE"
    assert described["nodegroup"]["capacityType"] == "SPOT"
    assert described["nodegroup"]["instanceTypes"] == ["m6i.large", "m5.large", "m5a.large"]
    assert "workload-spot" in eks.list_nodegroups(clusterName="prod")["nodegroups"]

    groups = {g.name: g for g in aws.cluster_source().node_groups()}
    spot = groups["workload-spot"]
    assert spot.cluster == "prod"
    assert spot.capacity_type == "SPOT"
    assert spot.instance_types == ("m6i.large", "m5.large", "m5a.large")
    assert spot.desired_size == 2
    assert spot.labels == {"role": "workload"}
    assert spot.taints == ({"key": "spot", "value": "true", "effect": "PREFER_NO_SCHEDULE"},)


def test_cluster_without_version_gets_the_default_and_unsupported_versions_fail(eks):
    cluster = make_cluster(eks, "defaulted", version=None)
    assert cluster["version"] == "1.32"
    code, status, message = error_of(
        eks.create_cluster,
        name="ancient",
        version="1.19",
        roleArn=ROLE,
        resourcesVpcConfig={"subnetIds": ["subnet-a"]},
    )
    assert (code, status) == ("InvalidParameterException", 400)
    assert "1.19" in message


def test_list_nodegroups_on_a_missing_cluster_is_not_found(eks):
    code, status, _ = error_of(eks.list_nodegroups, clusterName="missing")
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_describe_cluster_reports_the_kubernetes_simulator_and_a_pem_ca(aws, eks):
    make_cluster(eks, "endpoint")
    aws.kube_url = "http://127.0.0.1:6443"
    try:
        cluster = eks.describe_cluster(name="endpoint")["cluster"]
    finally:
        aws.kube_url = None
    assert cluster["endpoint"].startswith("http://127.0.0.1:6443/eks/")  # its own path
    assert cluster["endpoint"].endswith("/endpoint")
    pem = base64.b64decode(cluster["certificateAuthority"]["data"])
    assert x509.load_pem_x509_certificate(pem).subject.rfc4514_string() == "CN=kubernetes"
    assert eks.describe_cluster(name="endpoint")["cluster"]["endpoint"] != "http://127.0.0.1:6443"


# ----------------------------------------------------------------------------- add-ons


def test_addon_lifecycle_with_settings(eks):
    make_cluster(eks, "addons")
    addon = eks.create_addon(
        clusterName="addons",
        addonName="vpc-cni",
        serviceAccountRoleArn="arn:aws:iam::123456789012:role/vpc-cni",
        resolveConflicts="OVERWRITE",
        configurationValues='{"env": {"ENABLE_PREFIX_DELEGATION": "true"}}',
        tags={"team": "platform"},
    )["addon"]
    assert addon["addonName"] == "vpc-cni"
    assert addon["clusterName"] == "addons"
    assert addon["addonVersion"] == "v1.19.6-eksbuild.7"  # the default for 1.33
    assert addon["serviceAccountRoleArn"] == "arn:aws:iam::123456789012:role/vpc-cni"
    assert addon["configurationValues"] == '{"env": {"ENABLE_PREFIX_DELEGATION": "true"}}'
    assert addon["tags"] == {"team": "platform"}
    assert addon["addonArn"].startswith("arn:aws:eks:eu-west-1:123456789012:addon/addons/vpc-cni/")
    assert addon["status"] == "ACTIVE"  # vpc-cni is a DaemonSet: no nodes needed to be healthy
    eks.get_waiter("addon_active").wait(clusterName="addons", addonName="vpc-cni")

    update = eks.update_addon(
        clusterName="addons",
        addonName="vpc-cni",
        addonVersion="v1.20.0-eksbuild.1",
        resolveConflicts="PRESERVE",
    )["update"]
    assert update["type"] == "AddonUpdate"
    assert {p["type"]: p["value"] for p in update["params"]} == {
        "AddonVersion": "v1.20.0-eksbuild.1",
        "ResolveConflicts": "PRESERVE",
    }
    done = eks.describe_update(name="addons", updateId=update["id"], addonName="vpc-cni")
    assert done["update"]["status"] == "Successful"
    described = eks.describe_addon(clusterName="addons", addonName="vpc-cni")["addon"]
    assert described["addonVersion"] == "v1.20.0-eksbuild.1"
    assert described["status"] == "ACTIVE"

    deleted = eks.delete_addon(clusterName="addons", addonName="vpc-cni")["addon"]
    assert deleted["status"] == "DELETING"
    eks.get_waiter("addon_deleted").wait(clusterName="addons", addonName="vpc-cni")
    assert eks.list_addons(clusterName="addons")["addons"] == []


def test_addon_errors(eks):
    make_cluster(eks, "errors")
    assert error_of(eks.create_addon, clusterName="nope", addonName="vpc-cni")[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert error_of(eks.create_addon, clusterName="errors", addonName="istio")[:2] == (
        "InvalidParameterException",
        400,
    )
    wrong_version = error_of(
        eks.create_addon,
        clusterName="errors",
        addonName="kube-proxy",
        addonVersion="v1.30.6-eksbuild.3",  # a 1.30 build on a 1.33 cluster
    )
    assert wrong_version[:2] == ("InvalidParameterException", 400)
    bad_values = error_of(
        eks.create_addon,
        clusterName="errors",
        addonName="kube-proxy",
        configurationValues="[not, an, object]",
    )
    assert bad_values[:2] == ("InvalidParameterException", 400)
    preserve_on_create = error_of(
        eks.create_addon, clusterName="errors", addonName="kube-proxy", resolveConflicts="PRESERVE"
    )
    assert preserve_on_create[:2] == ("InvalidParameterException", 400)

    eks.create_addon(clusterName="errors", addonName="kube-proxy")
    assert error_of(eks.create_addon, clusterName="errors", addonName="kube-proxy")[:2] == (
        "ResourceInUseException",
        409,
    )
    assert error_of(eks.describe_addon, clusterName="errors", addonName="coredns")[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert error_of(eks.describe_addon, clusterName="nope", addonName="coredns")[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert error_of(eks.delete_addon, clusterName="errors", addonName="coredns")[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert error_of(eks.list_addons, clusterName="nope")[:2] == ("ResourceNotFoundException", 404)


def test_list_addons_pages(eks):
    make_cluster(eks, "paged")
    for name in ("vpc-cni", "kube-proxy", "coredns"):
        eks.create_addon(clusterName="paged", addonName=name)
    first = eks.list_addons(clusterName="paged", maxResults=2)
    second = eks.list_addons(clusterName="paged", maxResults=2, nextToken=first["nextToken"])
    assert "nextToken" not in second
    assert sorted(first["addons"] + second["addons"]) == ["coredns", "kube-proxy", "vpc-cni"]
    paginator = eks.get_paginator("list_addons")
    names = [n for page in paginator.paginate(clusterName="paged") for n in page["addons"]]
    assert sorted(names) == ["coredns", "kube-proxy", "vpc-cni"]


def test_deployment_addons_are_degraded_until_the_cluster_has_nodes(aws, eks):
    make_cluster(eks, "nodeless")
    for name in ("coredns", "aws-ebs-csi-driver", "kube-proxy"):
        eks.create_addon(clusterName="nodeless", addonName=name)

    def status(name: str) -> tuple[str, list[str]]:
        addon = eks.describe_addon(clusterName="nodeless", addonName=name)["addon"]
        return addon["status"], [issue["code"] for issue in addon["health"]["issues"]]

    assert status("coredns") == ("DEGRADED", ["InsufficientNumberOfReplicas"])
    assert status("aws-ebs-csi-driver") == ("DEGRADED", ["InsufficientNumberOfReplicas"])
    assert status("kube-proxy") == ("ACTIVE", [])
    assert AddonInfo("nodeless", "coredns", "DEGRADED") in aws.cluster_source().addons()

    make_nodegroup(eks, "nodeless", "empty", desired=0)
    assert status("coredns")[0] == "DEGRADED"  # a node group without nodes does not help

    eks.update_nodegroup_config(
        clusterName="nodeless",
        nodegroupName="empty",
        scalingConfig={"minSize": 0, "maxSize": 6, "desiredSize": 2},
    )
    assert status("coredns") == ("ACTIVE", [])
    assert status("aws-ebs-csi-driver") == ("ACTIVE", [])
    assert AddonInfo("nodeless", "coredns", "ACTIVE") in aws.cluster_source().addons()


def test_addons_of_a_deleted_cluster_disappear(aws, eks):
    make_cluster(eks, "doomed")
    eks.create_addon(clusterName="doomed", addonName="kube-proxy")
    make_nodegroup(eks, "doomed", "system")
    eks.delete_nodegroup(clusterName="doomed", nodegroupName="system")
    eks.get_waiter("nodegroup_deleted").wait(clusterName="doomed", nodegroupName="system")
    assert eks.delete_cluster(name="doomed")["cluster"]["status"] == "DELETING"
    eks.get_waiter("cluster_deleted").wait(name="doomed", WaiterConfig=FAST)
    assert all(a.cluster != "doomed" for a in aws.cluster_source().addons())
    assert all(g.cluster != "doomed" for g in aws.cluster_source().node_groups())

    make_cluster(eks, "doomed")  # a new cluster of that name starts without add-ons
    assert eks.list_addons(clusterName="doomed")["addons"] == []


# -------------------------------------------------------------------------- versions


def test_describe_addon_versions(eks):
    everything = eks.describe_addon_versions()["addons"]
    assert {a["addonName"] for a in everything} == {
        "vpc-cni",
        "kube-proxy",
        "coredns",
        "aws-ebs-csi-driver",
        "snapshot-controller",
    }
    for version in ("1.30", "1.31", "1.32", "1.33"):
        for addon in eks.describe_addon_versions(kubernetesVersion=version)["addons"]:
            defaults = [
                v["addonVersion"]
                for v in addon["addonVersions"]
                for c in v["compatibilities"]
                if c["clusterVersion"] == version and c["defaultVersion"]
            ]
            assert len(defaults) == 1, (addon["addonName"], version, defaults)
            assert all(v["addonVersion"].startswith("v") for v in addon["addonVersions"])

    proxies = eks.describe_addon_versions(kubernetesVersion="1.31", addonName="kube-proxy")
    (proxy,) = proxies["addons"]
    assert proxy["type"] == "networking"
    assert proxy["owner"] == "aws"
    assert all(v["addonVersion"].startswith("v1.31.") for v in proxy["addonVersions"])
    storage = eks.describe_addon_versions(types=["storage"])["addons"]
    assert [a["addonName"] for a in storage] == ["aws-ebs-csi-driver", "snapshot-controller"]
    assert storage[0]["addonVersions"][0]["requiresIamPermissions"] is True
    assert eks.describe_addon_versions(addonName="unknown")["addons"] == []


def test_describe_cluster_versions(eks):
    versions = eks.describe_cluster_versions()["clusterVersions"]
    assert [v["clusterVersion"] for v in versions] == ["1.33", "1.32", "1.31", "1.30"]
    assert [v["clusterVersion"] for v in versions if v["defaultVersion"]] == ["1.32"]
    statuses = {v["clusterVersion"]: v["versionStatus"] for v in versions}
    assert statuses["1.33"] == "STANDARD_SUPPORT"
    assert statuses["1.30"] == "EXTENDED_SUPPORT"
    assert all(v["endOfStandardSupportDate"] > v["releaseDate"] for v in versions)
    (default,) = eks.describe_cluster_versions(defaultOnly=True)["clusterVersions"]
    assert default["clusterVersion"] == "1.32"
    extended = eks.describe_cluster_versions(versionStatus="EXTENDED_SUPPORT")
    assert [v["clusterVersion"] for v in extended["clusterVersions"]] == ["1.30"]
    chosen = eks.describe_cluster_versions(clusterVersions=["1.31", "1.33"])["clusterVersions"]
    assert [v["clusterVersion"] for v in chosen] == ["1.33", "1.31"]


# ------------------------------------------------------------------------- updates


def test_cluster_updates_run_one_at_a_time_as_on_eks(aws, eks):
    make_cluster(eks, "updating")
    vpc = eks.describe_cluster(name="updating")["cluster"]["resourcesVpcConfig"]
    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["0.0.0.0/0"]  # EKS's default: open to everyone

    aws.settings.latency.time_scale = 0.05
    # Updates long enough to be met while they run on a busy machine: 1.5 s and 1 s.
    minutes = aws.settings.latency.minutes
    saved = {k: minutes[k] for k in ("cluster_update", "nodegroup_update")}
    minutes.update(cluster_update=30, nodegroup_update=20)
    try:
        eks.get_waiter("cluster_active").wait(name="updating", WaiterConfig=FAST)
        code, status, text = error_of(
            eks.update_cluster_config,
            name="updating",
            resourcesVpcConfig={"endpointPrivateAccess": True},
            logging={"clusterLogging": [{"types": ["api"], "enabled": True}]},
        )
        assert (code, status) == ("InvalidParameterException", 400)
        assert "Only one type of update" in text

        update = eks.update_cluster_config(
            name="updating",
            resourcesVpcConfig={
                "endpointPrivateAccess": True,
                "publicAccessCidrs": ["10.1.0.0/16"],
            },
        )["update"]
        assert (update["type"], update["status"]) == ("EndpointAccessUpdate", "InProgress")
        assert eks.describe_cluster(name="updating")["cluster"]["status"] == "UPDATING"
        code, status, text = error_of(
            eks.update_cluster_config,
            name="updating",
            logging={"clusterLogging": [{"types": ["api"], "enabled": True}]},
        )
        assert (code, status) == ("ResourceInUseException", 409)
        assert "update in progress" in text

        eks.get_waiter("cluster_active").wait(name="updating", WaiterConfig=FAST)
        done = eks.describe_update(name="updating", updateId=update["id"])["update"]
        assert done["status"] == "Successful"
        vpc = eks.describe_cluster(name="updating")["cluster"]["resourcesVpcConfig"]
        assert vpc["endpointPrivateAccess"] is True
        assert vpc["publicAccessCidrs"] == ["10.1.0.0/16"]
        assert vpc["subnetIds"] == ["subnet-a", "subnet-b"]  # merged, not replaced

        make_nodegroup(eks, "updating", "rolling")
        first = eks.update_nodegroup_config(
            clusterName="updating",
            nodegroupName="rolling",
            scalingConfig={"minSize": 0, "maxSize": 6, "desiredSize": 3},
        )["update"]
        code, _, _ = error_of(
            eks.update_nodegroup_config,
            clusterName="updating",
            nodegroupName="rolling",
            labels={"addOrUpdateLabels": {"role": "system"}},
        )
        assert code == "ResourceInUseException"
        assert (
            eks.describe_update(name="updating", updateId=first["id"], nodegroupName="rolling")[
                "update"
            ]["status"]
            == "InProgress"
        )
    finally:
        aws.settings.latency.time_scale = 0.0
        minutes.update(saved)
