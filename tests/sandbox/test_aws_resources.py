"""What the foundation creates besides EKS, through the local AWS: VPC, IAM, S3, ACM, more."""

from __future__ import annotations

import json

import boto3
import pytest

from sandbox.aws.server import LocalAws
from sandbox.settings import SandboxSettings

pytestmark = pytest.mark.sandbox

REGION = "eu-west-1"
ZONES = ("eu-west-1a", "eu-west-1b", "eu-west-1c")


@pytest.fixture(scope="module")
def aws():
    with LocalAws(SandboxSettings()) as local:
        yield local


@pytest.fixture(scope="module")
def session(aws):
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


def client(aws, session, service: str):
    return session.client(service, endpoint_url=aws.url)


def tags(name: str) -> list[dict]:
    return [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": name}]}]


def test_vpc_with_subnets_gateways_and_routes_round_trip(aws, session):
    ec2 = client(aws, session, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=tags("platform"))["Vpc"]
    vpc_id = vpc["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    public, private = [], []
    for index, zone in enumerate(ZONES):
        for tier, subnets, offset in (("public", public, 0), ("private", private, 10)):
            subnet = ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=f"10.20.{offset + index}.0/24",
                AvailabilityZone=zone,
                TagSpecifications=[
                    {
                        "ResourceType": "subnet",
                        "Tags": [{"Key": "tier", "Value": tier}],
                    }
                ],
            )["Subnet"]
            subnets.append(subnet["SubnetId"])
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public[0], AllocationId=allocation)["NatGateway"]
    ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat["NatGatewayId"]])

    public_routes = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_routes, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    private_routes = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.create_route(
        RouteTableId=private_routes,
        DestinationCidrBlock="0.0.0.0/0",
        NatGatewayId=nat["NatGatewayId"],
    )
    for subnet in public:
        ec2.associate_route_table(RouteTableId=public_routes, SubnetId=subnet)
    for subnet in private:
        ec2.associate_route_table(RouteTableId=private_routes, SubnetId=subnet)
    group = ec2.create_security_group(GroupName="cluster", Description="EKS cluster", VpcId=vpc_id)[
        "GroupId"
    ]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "IpRanges": [{"CidrIp": "10.20.0.0/16"}],
            }
        ],
    )

    found = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["platform"]}])["Vpcs"]
    assert [v["VpcId"] for v in found] == [vpc_id]
    private_found = ec2.describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "tag:tier", "Values": ["private"]},
        ]
    )["Subnets"]
    assert sorted(s["SubnetId"] for s in private_found) == sorted(private)
    assert {s["AvailabilityZone"] for s in private_found} == set(ZONES)
    table = ec2.describe_route_tables(RouteTableIds=[private_routes])["RouteTables"][0]
    assert {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": nat["NatGatewayId"]}.items() <= (
        next(r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0").items()
    )
    assert len(table["Associations"]) == 3
    rules = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    assert rules[0]["FromPort"] == 443

    # and back down again
    for association in table["Associations"]:
        ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
    ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
    ec2.release_address(AllocationId=allocation)
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    ec2.delete_security_group(GroupId=group)
    assert "ec2:CreateNatGateway" in aws.calls()


def test_iam_roles_with_aws_managed_policies_and_oidc(aws, session):
    iam = client(aws, session, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "eks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName="eks-cluster", AssumeRolePolicyDocument=json.dumps(trust))
    assert role["Role"]["Arn"] == "arn:aws:iam::123456789012:role/eks-cluster"
    managed = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
    assert iam.get_policy(PolicyArn=managed)["Policy"]["PolicyName"] == "AmazonEKSClusterPolicy"
    iam.attach_role_policy(RoleName="eks-cluster", PolicyArn=managed)
    attached = iam.list_attached_role_policies(RoleName="eks-cluster")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [managed]

    issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789"
    provider = iam.create_open_id_connect_provider(
        Url=issuer, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["9" * 40]
    )["OpenIDConnectProviderArn"]
    listed = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert provider in [p["Arn"] for p in listed]
    assert aws.calls()["iam:AttachRolePolicy"] == 1


def test_s3_bucket_with_versioning_and_lifecycle(aws, session):
    s3 = client(aws, session, "s3")
    s3.create_bucket(
        Bucket="platform-loki", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    s3.put_bucket_versioning(Bucket="platform-loki", VersioningConfiguration={"Status": "Enabled"})
    rules = [
        {
            "ID": "expire-chunks",
            "Status": "Enabled",
            "Filter": {"Prefix": "chunks/"},
            "Expiration": {"Days": 30},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
        }
    ]
    s3.put_bucket_lifecycle_configuration(
        Bucket="platform-loki", LifecycleConfiguration={"Rules": rules}
    )
    got = s3.get_bucket_lifecycle_configuration(Bucket="platform-loki")["Rules"]
    assert got[0]["ID"] == "expire-chunks"
    assert got[0]["Expiration"] == {"Days": 30}
    assert s3.get_bucket_versioning(Bucket="platform-loki")["Status"] == "Enabled"
    calls = aws.calls()
    assert calls["s3:PutBucketLifecycleConfiguration"] == 1
    assert calls["s3:GetBucketLifecycleConfiguration"] == 1


def test_acm_wildcard_certificate_is_issued_at_once(aws, session):
    acm = client(aws, session, "acm")
    arn = acm.request_certificate(
        DomainName="*.platform.example.com",
        SubjectAlternativeNames=["platform.example.com"],
        ValidationMethod="DNS",
    )["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(
        CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 2}
    )
    certificate = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert certificate["Status"] == "ISSUED"
    assert certificate["DomainName"] == "*.platform.example.com"


def test_route53_secrets_manager_and_log_retention(aws, session):
    route53 = client(aws, session, "route53")
    zone = route53.create_hosted_zone(Name="platform.example.com", CallerReference="platform")
    zone_id = zone["HostedZone"]["Id"]
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "grafana.platform.example.com",
                        "Type": "CNAME",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": "lb.example.com"}],
                    },
                }
            ]
        },
    )
    records = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    assert "grafana.platform.example.com." in [r["Name"] for r in records]

    secrets = client(aws, session, "secretsmanager")
    secrets.create_secret(Name="platform/postgres", SecretString='{"password": "p"}')
    value = secrets.get_secret_value(SecretId="platform/postgres")["SecretString"]
    assert json.loads(value) == {"password": "p"}

    logs = client(aws, session, "logs")
    logs.create_log_group(logGroupName="/aws/eks/platform/cluster")
    logs.put_retention_policy(logGroupName="/aws/eks/platform/cluster", retentionInDays=7)
    group = logs.describe_log_groups(logGroupNamePrefix="/aws/eks/platform")["logGroups"][0]
    assert group["retentionInDays"] == 7
    calls = aws.calls()
    for operation in (
        "route53:ChangeResourceRecordSets",
        "secretsmanager:GetSecretValue",
        "logs:PutRetentionPolicy",
    ):
        assert calls[operation] == 1


def test_a_roles_inline_policies_hold_10240_characters_at_most(aws, session):
    iam = client(aws, session, "iam")
    trust = {"Version": "2012-10-17", "Statement": []}
    iam.create_role(RoleName="inline-limit", AssumeRolePolicyDocument=json.dumps(trust))

    def document(actions: int) -> str:
        # Indented, as a human writes it: whitespace does not count.
        actions_ = [f"s3:Get{i:05d}" for i in range(actions)]
        statement = {"Effect": "Allow", "Action": actions_, "Resource": "*"}
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, indent=4)

    iam.put_role_policy(RoleName="inline-limit", PolicyName="a", PolicyDocument=document(400))
    # replacing a policy counts its new size only
    iam.put_role_policy(RoleName="inline-limit", PolicyName="a", PolicyDocument=document(400))
    with pytest.raises(iam.exceptions.LimitExceededException) as refused:  # 2 x 5.7 KB
        iam.put_role_policy(RoleName="inline-limit", PolicyName="b", PolicyDocument=document(400))
    assert "Maximum policy size of 10240 bytes exceeded for role inline-limit" in str(refused.value)
