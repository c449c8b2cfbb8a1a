"""Rules of EC2 and ELB that moto does not keep and a teardown meets on AWS: what a
network interface uses cannot be deleted, a NAT gateway lets go of its Elastic IP when it
goes, and a load balancer's interfaces outlive it for a while."""

from __future__ import annotations

import time
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox.aws.server import LocalAws
from sandbox.settings import SandboxSettings

pytestmark = pytest.mark.sandbox

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def settings() -> SandboxSettings:
    return SandboxSettings()


@pytest.fixture(scope="module")
def aws(settings: SandboxSettings) -> Iterator[LocalAws]:
    with LocalAws(settings) as local:
        yield local


@pytest.fixture(autouse=True)
def latency_off(settings: SandboxSettings) -> Iterator[None]:
    yield
    settings.latency.time_scale = 0.0


def client(aws: LocalAws, service: str):
    return boto3.client(
        service,
        endpoint_url=aws.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def network(ec2, cidr: str) -> tuple[str, list[str]]:
    vpc = ec2.create_vpc(CidrBlock=f"{cidr}.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"{cidr}.{i}.0/24", AvailabilityZone=f"{REGION}{zone}"
        )["Subnet"]["SubnetId"]
        for i, zone in enumerate("ab")
    ]
    return vpc, subnets


def code(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def test_what_an_interface_uses_cannot_be_deleted(aws):
    ec2 = client(aws, "ec2")
    vpc, (subnet, other) = network(ec2, "10.41")
    group = ec2.create_security_group(GroupName="g", Description="d", VpcId=vpc)["GroupId"]
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[group])["NetworkInterface"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)

    assert code(lambda: ec2.delete_subnet(SubnetId=subnet)) == "DependencyViolation"
    assert code(lambda: ec2.delete_security_group(GroupId=group)) == "DependencyViolation"
    ec2.delete_subnet(SubnetId=other)  # nothing in it
    ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
    ec2.delete_subnet(SubnetId=subnet)
    # a VPC goes only without its own security groups and gateways
    assert code(lambda: ec2.delete_vpc(VpcId=vpc)) == "DependencyViolation"
    ec2.delete_security_group(GroupId=group)
    assert code(lambda: ec2.delete_vpc(VpcId=vpc)) == "DependencyViolation"
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_vpc(VpcId=vpc)


def test_a_nat_gateway_holds_its_address_until_it_is_deleted(aws):
    ec2 = client(aws, "ec2")
    vpc, (subnet, _) = network(ec2, "10.42")
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=allocation)["NatGateway"]
    (eni,) = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet]}])[
        "NetworkInterfaces"
    ]
    assert (eni["Status"], eni["InterfaceType"], eni["RequesterManaged"]) == (
        "in-use",
        "nat_gateway",
        True,
    )

    eni_id = eni["NetworkInterfaceId"]
    assert code(lambda: ec2.delete_network_interface(NetworkInterfaceId=eni_id)) == (
        "InvalidNetworkInterface.InUse"
    )
    assert code(lambda: ec2.release_address(AllocationId=allocation)) == "InvalidIPAddress.InUse"
    assert code(lambda: ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)) == (
        "DependencyViolation"
    )
    ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
    (address,) = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"]
    assert "AssociationId" not in address
    filters = [{"Name": "subnet-id", "Values": [subnet]}]
    assert ec2.describe_network_interfaces(Filters=filters)["NetworkInterfaces"] == []
    ec2.release_address(AllocationId=allocation)
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)


@pytest.mark.parametrize("api", ["elbv2", "elb"])
def test_a_load_balancers_interfaces_outlive_it_for_a_while(aws, settings, api):
    ec2, elb = client(aws, "ec2"), client(aws, api)
    vpc, subnets = network(ec2, "10.43" if api == "elbv2" else "10.44")
    group = ec2.create_security_group(GroupName="lb", Description="d", VpcId=vpc)["GroupId"]
    if api == "elbv2":
        arn = elb.create_load_balancer(
            Name="k8s-lb", Subnets=subnets, SecurityGroups=[group], Type="network"
        )["LoadBalancers"][0]["LoadBalancerArn"]
        described = f"ELB net/k8s-lb/{arn.rsplit('/', 1)[1]}"
    else:
        elb.create_load_balancer(
            LoadBalancerName="classic",
            Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
            Subnets=subnets,
            SecurityGroups=[group],
        )
        described = "ELB classic"
    vpc_filter = [{"Name": "vpc-id", "Values": [vpc]}]
    held = ec2.describe_network_interfaces(Filters=vpc_filter)["NetworkInterfaces"]
    assert sorted(e["SubnetId"] for e in held) == sorted(subnets)
    assert {(e["Description"], e["Status"]) for e in held} == {(described, "in-use")}

    settings.latency.time_scale = 0.1  # the interfaces linger 3 guide minutes: 0.3 s
    if api == "elbv2":
        elb.delete_load_balancer(LoadBalancerArn=arn)
    else:
        elb.delete_load_balancer(LoadBalancerName="classic")
    deleted = time.time()
    assert code(lambda: ec2.delete_subnet(SubnetId=subnets[0])) == "DependencyViolation"
    assert code(lambda: ec2.delete_security_group(GroupId=group)) == "DependencyViolation"
    assert len(ec2.describe_network_interfaces(Filters=vpc_filter)["NetworkInterfaces"]) == 2
    time.sleep(max(0.0, deleted + 0.35 - time.time()))
    assert ec2.describe_network_interfaces(Filters=vpc_filter)["NetworkInterfaces"] == []
    for subnet in subnets:
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_security_group(GroupId=group)
