"""Everything the platform owns in AWS, found by its tags: type, id and name."""

from __future__ import annotations

from typing import Any

from blueprint.spec import PlatformSpec
from tasks.aws.clients import AwsClients
from tasks.aws.errors import AwsError, aws_call
from tasks.aws.identity import Identity, tag_dict
from tasks.aws.volumes import describe_volume, platform_volumes


def _name(tags: list[dict] | None, default: str = "") -> str:
    return tag_dict(tags).get("Name", default)


def aws_inventory(spec: PlatformSpec, aws: AwsClients) -> list[dict[str, str]]:
    """One row per resource: ``{"type", "id", "name"}``, in creation order by kind."""
    me = Identity.of(spec)
    ec2, mine = aws("ec2"), me.filters()
    rows: list[dict[str, str]] = []

    def add(kind: str, ident: str, name: str = "") -> None:
        rows.append({"type": kind, "id": ident, "name": name})

    ec2_kinds: list[tuple[str, str, str, str]] = [
        ("vpc", "describe_vpcs", "Vpcs", "VpcId"),
        ("subnet", "describe_subnets", "Subnets", "SubnetId"),
        ("internet-gateway", "describe_internet_gateways", "InternetGateways", "InternetGatewayId"),
        ("elastic-ip", "describe_addresses", "Addresses", "AllocationId"),
        ("route-table", "describe_route_tables", "RouteTables", "RouteTableId"),
        ("security-group", "describe_security_groups", "SecurityGroups", "GroupId"),
        ("launch-template", "describe_launch_templates", "LaunchTemplates", "LaunchTemplateId"),
    ]
    for kind, call, key, ident in ec2_kinds:
        with aws_call(f"ec2:{call}"):
            for item in getattr(ec2, call)(Filters=mine)[key]:
                add(kind, item[ident], _name(item.get("Tags"), item.get("LaunchTemplateName", "")))
    vpcs = [r["id"] for r in rows if r["type"] == "vpc"]
    rows += _interface_inventory(ec2, vpcs)
    rows += [
        {"type": "ebs-volume", "id": v["VolumeId"], "name": describe_volume(v)}
        for v in platform_volumes(spec, aws)
    ]
    with aws_call("ec2:DescribeNatGateways"):
        for nat in ec2.describe_nat_gateways(
            Filters=[*mine, {"Name": "state", "Values": ["pending", "available"]}]
        )["NatGateways"]:
            add("nat-gateway", nat["NatGatewayId"], _name(nat.get("Tags")))
    with aws_call("ec2:DescribeVpcEndpoints"):  # deleted ones linger a while, as NATs do
        for endpoint in ec2.describe_vpc_endpoints(
            Filters=[*mine, {"Name": "vpc-endpoint-state", "Values": ["pending", "available"]}]
        )["VpcEndpoints"]:
            add("vpc-endpoint", endpoint["VpcEndpointId"], _name(endpoint.get("Tags")))
    iam = aws("iam")
    with aws_call("iam:ListRoles"):
        roles = [r for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]]
    for role in roles:
        if role["RoleName"].startswith(f"{me.prefix}-"):
            with aws_call("iam:ListRoleTags"):
                tags = iam.list_role_tags(RoleName=role["RoleName"])["Tags"]
            if me.owns(tags):
                add("iam-role", role["Arn"], role["RoleName"])
    with aws_call("iam:ListOpenIDConnectProviders"):
        providers = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    for provider in providers:
        with aws_call("iam:GetOpenIDConnectProvider"):
            tags = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider["Arn"]).get(
                "Tags", []
            )
        if me.owns(tags):
            add("oidc-provider", provider["Arn"])
    rows += _eks_inventory(spec, aws, me)
    logs = aws("logs")
    group = f"/aws/eks/{spec.eks.cluster_name}/cluster"
    with aws_call("logs:DescribeLogGroups"):
        for found in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
            add("log-group", found["logGroupName"], f"retention {found.get('retentionInDays')}d")
    rows += _bucket_inventory(aws, me)
    return rows


def _interface_inventory(ec2: Any, vpcs: list[str]) -> list[dict[str, str]]:
    """The network interfaces in the platform's VPC: whatever still holds an address there
    (a NAT gateway, a load balancer, a node) has one."""
    if not vpcs:
        return []
    with aws_call("ec2:DescribeNetworkInterfaces"):
        found = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": vpcs}])
    return [
        {
            "type": "network-interface",
            "id": i["NetworkInterfaceId"],
            "name": f"{i.get('Description') or i.get('InterfaceType')} {i.get('Status')}",
        }
        for i in found["NetworkInterfaces"]
    ]


def _eks_inventory(spec: PlatformSpec, aws: AwsClients, me: Identity) -> list[dict[str, str]]:
    eks, name = aws("eks"), spec.eks.cluster_name
    try:
        with aws_call("eks:DescribeCluster"):
            cluster = eks.describe_cluster(name=name)["cluster"]
    except AwsError as exc:
        if exc.code == "ResourceNotFoundException":
            return []
        raise
    if not me.owns(cluster.get("tags")):
        return []
    rows = [{"type": "eks-cluster", "id": cluster["arn"], "name": f"{name} {cluster['status']}"}]
    with aws_call("eks:ListNodegroups"):
        groups = eks.list_nodegroups(clusterName=name)["nodegroups"]
    for group in groups:
        with aws_call("eks:DescribeNodegroup"):
            described = eks.describe_nodegroup(clusterName=name, nodegroupName=group)["nodegroup"]
        if me.owns(described.get("tags")):
            rows.append({"type": "eks-nodegroup", "id": described["nodegroupArn"], "name": group})
    with aws_call("eks:ListAddons"):
        addons = eks.list_addons(clusterName=name)["addons"]
    for addon in addons:
        with aws_call("eks:DescribeAddon"):
            described = eks.describe_addon(clusterName=name, addonName=addon)["addon"]
        rows.append(
            {
                "type": "eks-addon",
                "id": described.get("addonArn", addon),
                "name": f"{addon} {described.get('addonVersion', '')} {described['status']}",
            }
        )
    return rows


def _bucket_inventory(aws: AwsClients, me: Identity) -> list[dict[str, str]]:
    s3 = aws("s3")
    rows = []
    with aws_call("s3:ListBuckets"):
        buckets = s3.list_buckets().get("Buckets", [])
    for bucket in buckets:
        if not bucket["Name"].startswith(f"{me.prefix}-"):
            continue
        try:
            with aws_call("s3:GetBucketTagging"):
                tags: Any = s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"]
        except AwsError as exc:
            if exc.code != "NoSuchTagSet":
                raise
            continue
        if me.owns(tags):
            rows.append({"type": "s3-bucket", "id": bucket["Name"], "name": bucket["Name"]})
    return rows
