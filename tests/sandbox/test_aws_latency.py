"""Simulated time: clusters, node groups and add-ons are CREATING first, then ACTIVE."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox.aws.server import LocalAws
from sandbox.settings import Latency, SandboxSettings

pytestmark = pytest.mark.sandbox

REGION = "eu-west-1"
CLUSTER_SECONDS = 0.5
# 12 guide minutes of EKS become 0.5 s; node groups (5 min) 0.21 s, add-ons (2 min) 0.08 s.
LATENCY = Latency(time_scale=CLUSTER_SECONDS / 12)
POLL = {"Delay": 0.05, "MaxAttempts": 100}


@pytest.fixture(scope="module")
def aws():
    with LocalAws(SandboxSettings(latency=LATENCY)) as local:
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


def create_cluster(eks, name: str) -> tuple[dict, float]:
    began = time.monotonic()
    cluster = eks.create_cluster(
        name=name,
        version="1.33",
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-a"]},
    )["cluster"]
    return cluster, began


def error_code(call, **kwargs) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"]


def test_cluster_is_creating_until_its_time_has_passed(eks):
    cluster, began = create_cluster(eks, "slow")
    assert cluster["status"] == "CREATING"
    creating = eks.describe_cluster(name="slow")["cluster"]
    assert creating["status"] == "CREATING"
    assert "endpoint" not in creating  # EKS has no endpoint for a cluster being created
    node_group = {
        "clusterName": "slow",
        "nodegroupName": "early",
        "nodeRole": "arn:aws:iam::123456789012:role/node",
        "subnets": ["subnet-a"],
    }
    assert error_code(eks.create_nodegroup, **node_group) == "InvalidRequestException"
    assert error_code(eks.create_addon, clusterName="slow", addonName="vpc-cni") == (
        "InvalidRequestException"
    )

    eks.get_waiter("cluster_active").wait(name="slow", WaiterConfig=POLL)
    assert time.monotonic() - began >= CLUSTER_SECONDS * 0.9
    active = eks.describe_cluster(name="slow")["cluster"]
    assert active["status"] == "ACTIVE"
    assert active["endpoint"]
    assert active["certificateAuthority"]["data"]


def test_nodegroup_is_creating_then_joins_the_cluster_source(aws, eks):
    create_cluster(eks, "groups")
    eks.get_waiter("cluster_active").wait(name="groups", WaiterConfig=POLL)
    group = eks.create_nodegroup(
        clusterName="groups",
        nodegroupName="system",
        nodeRole="arn:aws:iam::123456789012:role/node",
        subnets=["subnet-a"],
        scalingConfig={"minSize": 1, "maxSize": 3, "desiredSize": 2},
    )["nodegroup"]
    assert group["status"] == "CREATING"
    assert [g.name for g in aws.cluster_source().node_groups() if g.cluster == "groups"] == []

    eks.get_waiter("nodegroup_active").wait(
        clusterName="groups", nodegroupName="system", WaiterConfig=POLL
    )
    assert [g.name for g in aws.cluster_source().node_groups() if g.cluster == "groups"] == [
        "system"
    ]


def test_addon_creates_updates_and_deletes_in_its_time(aws, eks):
    create_cluster(eks, "timed")
    eks.get_waiter("cluster_active").wait(name="timed", WaiterConfig=POLL)
    addon = eks.create_addon(clusterName="timed", addonName="kube-proxy")["addon"]
    assert addon["status"] == "CREATING"
    eks.get_waiter("addon_active").wait(
        clusterName="timed", addonName="kube-proxy", WaiterConfig=POLL
    )

    update = eks.update_addon(
        clusterName="timed", addonName="kube-proxy", addonVersion="v1.33.3-eksbuild.4"
    )["update"]
    assert update["status"] == "InProgress"
    assert eks.describe_addon(clusterName="timed", addonName="kube-proxy")["addon"]["status"] == (
        "UPDATING"
    )
    assert error_code(eks.update_addon, clusterName="timed", addonName="kube-proxy") == (
        "ResourceInUseException"
    )
    eks.get_waiter("addon_active").wait(
        clusterName="timed", addonName="kube-proxy", WaiterConfig=POLL
    )
    described = eks.describe_update(name="timed", updateId=update["id"], addonName="kube-proxy")
    assert described["update"]["status"] == "Successful"

    assert eks.delete_addon(clusterName="timed", addonName="kube-proxy")["addon"]["status"] == (
        "DELETING"
    )
    still = eks.describe_addon(clusterName="timed", addonName="kube-proxy")["addon"]
    assert still["status"] == "DELETING"
    eks.get_waiter("addon_deleted").wait(
        clusterName="timed", addonName="kube-proxy", WaiterConfig=POLL
    )
    assert all(a.cluster != "timed" for a in aws.cluster_source().addons())
