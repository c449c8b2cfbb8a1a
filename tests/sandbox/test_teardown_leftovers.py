"""What a teardown meets on AWS besides the platform's own resources, against the local AWS
and Kubernetes simulator: interfaces of deleted load balancers that take minutes to go,
what the load balancer controller and the EBS CSI driver leave, and NAT addresses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config

from blueprint.pace import Pace
from sandbox.settings import Fault
from tasks.aws.clients import AwsClients
from tasks.aws.errors import PermanentAwsError
from tasks.aws.identity import Identity, tag_dict
from tasks.aws.inventory import aws_inventory
from tasks.aws.loadbalancers import (
    CONTROLLER_CLUSTER_TAG,
    cluster_load_balancers,
    cluster_target_groups,
    delete_load_balancer,
    delete_target_groups,
)
from tasks.aws.volumes import delete_volumes, volume_tags
from tasks.aws.vpc import Network, delete_network, ensure_network
from tasks.polling import poll_until
from tasks.storage import ensure_storage_classes
from tests.sandbox.foundation_sandbox import FAST, Sandbox, new_clients, spec_named

pytestmark = pytest.mark.sandbox


@pytest.fixture(autouse=True)
def settings_restored(sandbox: Sandbox) -> Iterator[None]:
    yield
    sandbox.settings.faults.clear()
    sandbox.settings.latency.time_scale = 0.0


@pytest.fixture(scope="module")
def aws(sandbox: Sandbox) -> AwsClients:
    return new_clients(sandbox)


def kinds(spec: Any, aws: AwsClients) -> set[str]:
    return {row["type"] for row in aws_inventory(spec, aws)}


def leave_load_balancer_behind(aws: AwsClients, spec: Any, net: Network) -> str:
    """What the AWS Load Balancer Controller makes for a Service, and an interface endpoint
    and a detached interface someone made in the VPC."""
    ec2, elbv2, cluster = aws("ec2"), aws("elbv2"), spec.eks.cluster_name
    controller = [{"Key": CONTROLLER_CLUSTER_TAG, "Value": cluster}]
    group = ec2.create_security_group(
        GroupName="k8s-traffic",
        Description="load balancer",
        VpcId=net.vpc_id,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": controller}],
    )["GroupId"]
    subnets = list(net.private_subnets.values())
    elbv2.create_load_balancer(
        Name="k8s-gateway", Subnets=subnets, SecurityGroups=[group], Type="network", Tags=controller
    )
    elbv2.create_target_group(
        Name="k8s-gateway-tg", Protocol="TCP", Port=80, VpcId=net.vpc_id, Tags=controller
    )
    ec2.create_vpc_endpoint(
        VpcId=net.vpc_id,
        ServiceName="com.amazonaws.us-east-1.ssm",
        VpcEndpointType="Interface",
        SubnetIds=subnets[:1],
    )
    ec2.create_network_interface(SubnetId=subnets[0], Description="left by the CNI")
    return group


def test_the_network_waits_for_a_load_balancers_interfaces_and_takes_its_leftovers(
    sandbox: Sandbox, aws: AwsClients
):
    spec = spec_named("drain")
    net = ensure_network(spec, aws)
    group = leave_load_balancer_behind(aws, spec, net)
    assert "network-interface" in kinds(spec, aws)
    sandbox.settings.latency.time_scale = 1 / 3  # the interfaces linger 3 guide minutes: 1 s

    (balancer,) = cluster_load_balancers(aws, spec.eks.cluster_name)
    assert delete_load_balancer(aws, balancer)
    began = time.monotonic()
    assert delete_target_groups(aws, spec.eks.cluster_name) == ["target group k8s-gateway-tg"]
    deleted = delete_network(spec, aws, FAST)

    assert time.monotonic() - began >= 0.9  # it waited for the interfaces to go
    assert f"security group {group}" in deleted
    assert sum(item.startswith("vpc endpoint ") for item in deleted) == 2  # S3's and SSM's
    assert sum(item.startswith("network interface ") for item in deleted) == 1
    assert aws_inventory(spec, aws) == []
    assert cluster_target_groups(aws, spec.eks.cluster_name) == []


def test_past_its_budget_the_network_names_what_still_holds_it(sandbox: Sandbox, aws: AwsClients):
    spec = spec_named("stuck")
    net = ensure_network(spec, aws)
    leave_load_balancer_behind(aws, spec, net)
    sandbox.settings.latency.time_scale = 60.0  # the interfaces linger 3 minutes
    (balancer,) = cluster_load_balancers(aws, spec.eks.cluster_name)
    delete_load_balancer(aws, balancer)

    began = time.monotonic()
    with pytest.raises(PermanentAwsError) as failed:
        delete_network(spec, aws, Pace(time_scale=FAST.time_scale, min_budget=0.5))
    assert time.monotonic() - began < 5
    assert failed.value.code == "DependencyViolation"
    message = str(failed.value)
    assert "ec2:DeleteSubnet subnet-" in message
    assert "still in the way: eni-" in message and "(ELB net/k8s-gateway/" in message


def test_a_failed_nat_gateway_create_leaves_no_second_address(sandbox: Sandbox, aws: AwsClients):
    spec = spec_named("natretry")
    sandbox.settings.faults.add(Fault("aws-denied", "ec2:CreateNatGateway", 1))
    with pytest.raises(PermanentAwsError):
        ensure_network(spec, aws)
    ensure_network(spec, aws)
    mine = Identity.of(spec).filters()
    (address,) = aws("ec2").describe_addresses(Filters=mine)["Addresses"]
    assert address.get("AssociationId")

    deleted = delete_network(spec, aws, FAST)
    assert f"eip {address['AllocationId']}" in deleted
    assert aws("ec2").describe_addresses(Filters=mine)["Addresses"] == []


@pytest.fixture
def claims(sandbox: Sandbox, aws: AwsClients) -> Iterator[tuple[Any, k8s.CoreV1Api]]:
    """A cluster of the platform's in the local AWS, its StorageClass in the simulator."""
    spec = spec_named("volumes")
    eks = aws("eks")
    eks.create_cluster(
        name=spec.eks.cluster_name,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-a", "subnet-b"]},
    )
    api = config.new_client_from_config(config_file=str(sandbox.kubeconfig))
    try:
        settings = spec.storage_class.model_copy(update={"snapshots": False})
        ensure_storage_classes(api, settings, FAST, volume_tags(spec))
        core = k8s.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": "claims"}})
        yield spec, core
        core.delete_namespace("claims", _preload_content=False)
        k8s.StorageV1Api(api).delete_storage_class(spec.storage_class.name, _preload_content=False)
    finally:
        api.close()
        eks.delete_cluster(name=spec.eks.cluster_name)


def claim(core: k8s.CoreV1Api, name: str) -> str:
    core.create_namespaced_persistent_volume_claim(
        "claims",
        {
            "metadata": {"name": name},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "2Gi"}},
            },
        },
    )
    bound = poll_until(
        lambda: core.read_namespaced_persistent_volume_claim(name, "claims").spec.volume_name,
        10,
        0.05,
        "claim bound",
    )
    return core.read_persistent_volume(bound).spec.csi.volume_handle


def test_csi_volumes_carry_the_storage_class_tags_and_outlive_a_lost_cluster(
    claims: tuple[Any, k8s.CoreV1Api], aws: AwsClients
):
    spec, core = claims
    ec2 = aws("ec2")
    handle = claim(core, "data")
    (volume,) = ec2.describe_volumes(VolumeIds=[handle])["Volumes"]
    tags = tag_dict(volume["Tags"])
    assert volume_tags(spec).items() <= tags.items()
    assert tags[f"kubernetes.io/cluster/{spec.eks.cluster_name}"] == "owned"
    assert tags["kubernetes.io/created-for/pvc/name"] == "data"
    assert volume["Size"] == 2
    # the driver deletes a claim's volume with it
    core.delete_namespaced_persistent_volume_claim("data", "claims", _preload_content=False)
    poll_until(
        lambda: (
            True
            if not ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [handle]}])[
                "Volumes"
            ]
            else None
        ),
        10,
        0.05,
        "volume deleted",
    )
    # a claim whose namespace the teardown never reached keeps its volume: found by its tags
    kept = claim(core, "kept")
    assert "ebs-volume" in kinds(spec, aws)
    assert delete_volumes(spec, aws, FAST) == [f"ebs volume {kept} (claim claims/kept)"]
    assert "ebs-volume" not in kinds(spec, aws)
