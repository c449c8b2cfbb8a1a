"""The network: VPC over the spec's zones, public and private subnets, internet gateway,
NAT, route tables, an S3 gateway endpoint and the cluster's shared security group.

``ensure_network`` finds each piece by the platform's tags and acts only on differences;
``delete_network`` removes them in reverse dependency order, with what others left in the
VPC (endpoints, detached interfaces, load balancers' security groups).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from blueprint.pace import Pace
from blueprint.spec import PlatformSpec
from tasks.aws.clients import AwsClients
from tasks.aws.errors import PermanentAwsError, aws_call
from tasks.aws.identity import Identity, tag_dict
from tasks.aws.loadbalancers import of_cluster
from tasks.aws.patience import delete_when_free

COMPONENT = "vpc"
ELB_ROLE_TAGS = {"public": "kubernetes.io/role/elb", "private": "kubernetes.io/role/internal-elb"}


@dataclass
class Network:
    vpc_id: str
    public_subnets: dict[str, str] = field(default_factory=dict)  # zone -> subnet id
    private_subnets: dict[str, str] = field(default_factory=dict)
    internet_gateway: str = ""
    nat_gateways: dict[str, str] = field(default_factory=dict)  # zone -> nat id
    route_tables: dict[str, str] = field(default_factory=dict)  # part -> route table id
    security_group: str = ""
    s3_endpoint: str = ""
    changes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _one(items: list[dict], what: str) -> dict | None:
    if len(items) > 1:
        ids = ", ".join(str(i.get(k)) for i in items for k in i if k.endswith("Id"))
        raise PermanentAwsError(f"find {what}", "Ambiguous", f"several match: {ids}")
    return items[0] if items else None


class _Converger:
    def __init__(self, spec: PlatformSpec, aws: AwsClients):
        self.spec, self.ec2 = spec, aws("ec2")
        self.me = Identity.of(spec)
        self.net: Network | None = None
        self.changes: list[str] = []

    def tag_spec(self, resource: str, part: str | None = None, **more: str) -> list[dict]:
        name = f"{self.me.prefix}-{part}" if part else self.me.prefix
        tags = self.me.tag_list(COMPONENT, part, Name=name, **more)
        return [{"ResourceType": resource, "Tags": tags}]

    # ------------------------------------------------------------------ pieces
    def vpc(self) -> str:
        with aws_call("ec2:DescribeVpcs"):
            found = _one(self.ec2.describe_vpcs(Filters=self.me.filters(COMPONENT))["Vpcs"], "VPC")
        cidr = self.spec.network.vpc_cidr
        if found:
            if found["CidrBlock"] != cidr:
                raise PermanentAwsError(
                    "ensure vpc",
                    "CidrMismatch",
                    f"{found['VpcId']} has CIDR {found['CidrBlock']}, the spec says {cidr}; "
                    "a VPC's primary CIDR cannot change (tear down to recreate)",
                )
            vpc_id = found["VpcId"]
        else:
            with aws_call("ec2:CreateVpc"):
                vpc_id = self.ec2.create_vpc(
                    CidrBlock=cidr, TagSpecifications=self.tag_spec("vpc")
                )["Vpc"]["VpcId"]
                self.ec2.get_waiter("vpc_available").wait(VpcIds=[vpc_id])
            self.changes.append(f"created vpc {vpc_id}")
        # EKS needs DNS support and hostnames for private endpoint access and node names.
        for attribute, key in (
            ("enableDnsSupport", "EnableDnsSupport"),
            ("enableDnsHostnames", "EnableDnsHostnames"),
        ):
            with aws_call("ec2:DescribeVpcAttribute"):
                current = self.ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)
            if not current[key]["Value"]:
                with aws_call("ec2:ModifyVpcAttribute"):
                    self.ec2.modify_vpc_attribute(VpcId=vpc_id, **{key: {"Value": True}})
                self.changes.append(f"enabled {attribute} on {vpc_id}")
        return vpc_id

    def subnets(self, vpc_id: str, kind: str, cidrs: list[str]) -> dict[str, str]:
        zones = self.spec.network.availability_zones
        wanted = {f"{kind}-{zone}": (zone, cidr) for zone, cidr in zip(zones, cidrs, strict=True)}
        with aws_call("ec2:DescribeSubnets"):
            existing = self.ec2.describe_subnets(
                Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, *self.me.filters(COMPONENT)]
            )["Subnets"]
        by_part = {tag_dict(s.get("Tags")).get("platform.io/part"): s for s in existing}
        result = {}
        for part, (zone, cidr) in wanted.items():
            extra = {ELB_ROLE_TAGS[kind]: "1", f"kubernetes.io/cluster/{self.me.cluster}": "shared"}
            subnet = by_part.get(part)
            if subnet and (subnet["CidrBlock"] != cidr or subnet["AvailabilityZone"] != zone):
                self._delete_subnet(subnet["SubnetId"])
                subnet = None
            if subnet is None:
                with aws_call("ec2:CreateSubnet"):
                    subnet = self.ec2.create_subnet(
                        VpcId=vpc_id,
                        CidrBlock=cidr,
                        AvailabilityZone=zone,
                        TagSpecifications=self.tag_spec("subnet", part, **extra),
                    )["Subnet"]
                self.changes.append(f"created subnet {part} {subnet['SubnetId']}")
            else:
                missing = {
                    k: v for k, v in extra.items() if tag_dict(subnet.get("Tags")).get(k) != v
                }
                if missing:
                    with aws_call("ec2:CreateTags"):
                        self.ec2.create_tags(
                            Resources=[subnet["SubnetId"]],
                            Tags=[{"Key": k, "Value": v} for k, v in missing.items()],
                        )
                    self.changes.append(f"tagged subnet {part}")
            if kind == "public" and not subnet.get("MapPublicIpOnLaunch"):
                with aws_call("ec2:ModifySubnetAttribute"):
                    self.ec2.modify_subnet_attribute(
                        SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True}
                    )
                self.changes.append(f"public IPs on launch for {part}")
            result[zone] = subnet["SubnetId"]
        for part, subnet in by_part.items():
            if part and part.startswith(f"{kind}-") and part not in wanted:
                self._delete_subnet(subnet["SubnetId"])
        return result

    def _delete_subnet(self, subnet_id: str) -> None:
        with aws_call("ec2:DeleteSubnet"):
            self.ec2.delete_subnet(SubnetId=subnet_id)
        self.changes.append(f"deleted subnet {subnet_id}")

    def internet_gateway(self, vpc_id: str) -> str:
        with aws_call("ec2:DescribeInternetGateways"):
            found = _one(
                self.ec2.describe_internet_gateways(Filters=self.me.filters(COMPONENT))[
                    "InternetGateways"
                ],
                "internet gateway",
            )
        if found is None:
            with aws_call("ec2:CreateInternetGateway"):
                found = self.ec2.create_internet_gateway(
                    TagSpecifications=self.tag_spec("internet-gateway")
                )["InternetGateway"]
            self.changes.append(f"created internet gateway {found['InternetGatewayId']}")
        igw = found["InternetGatewayId"]
        attached = [a["VpcId"] for a in found.get("Attachments", [])]
        if vpc_id not in attached:
            with aws_call("ec2:AttachInternetGateway"):
                self.ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
            self.changes.append(f"attached {igw} to {vpc_id}")
        return igw

    def nat_gateways(self, vpc_id: str, public: dict[str, str]) -> dict[str, str]:
        zones = self.spec.network.availability_zones
        nat_zones = zones[:1] if self.spec.network.nat_gateways == "single" else zones
        with aws_call("ec2:DescribeNatGateways"):
            existing = self.ec2.describe_nat_gateways(
                Filters=[
                    {"Name": "vpc-id", "Values": [vpc_id]},
                    {"Name": "state", "Values": ["pending", "available"]},
                    *self.me.filters(COMPONENT),
                ]
            )["NatGateways"]
        by_part = {tag_dict(n.get("Tags")).get("platform.io/part"): n for n in existing}
        result = {}
        created = []
        for zone in nat_zones:
            part = f"nat-{zone}"
            nat = by_part.get(part)
            if nat is None or nat["SubnetId"] != public[zone]:
                if nat is not None:
                    self._delete_nat(nat)
                allocation = self._address(part)
                with aws_call("ec2:CreateNatGateway"):
                    nat = self.ec2.create_nat_gateway(
                        SubnetId=public[zone],
                        AllocationId=allocation,
                        TagSpecifications=self.tag_spec("natgateway", part),
                    )["NatGateway"]
                created.append(nat["NatGatewayId"])
                self.changes.append(f"created NAT gateway {part} {nat['NatGatewayId']}")
            result[zone] = nat["NatGatewayId"]
        for part, nat in by_part.items():
            if part and part not in {f"nat-{z}" for z in nat_zones}:
                self._delete_nat(nat)
        if created:
            with aws_call("ec2:DescribeNatGateways (wait available)"):
                self.ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=created)
        return result

    def _address(self, part: str) -> str:
        """The NAT gateway's Elastic IP: the platform's free one of that part when an earlier
        create failed after allocating it (else every failed try would keep one more)."""
        with aws_call("ec2:DescribeAddresses"):
            found = self.ec2.describe_addresses(Filters=self.me.filters(COMPONENT, part))
        free = [a for a in found["Addresses"] if not a.get("AssociationId")]
        if free:
            return free[0]["AllocationId"]
        with aws_call("ec2:AllocateAddress"):
            allocation = self.ec2.allocate_address(
                Domain="vpc", TagSpecifications=self.tag_spec("elastic-ip", part)
            )["AllocationId"]
        self.changes.append(f"allocated Elastic IP {part} {allocation}")
        return allocation

    def _delete_nat(self, nat: dict) -> None:
        with aws_call("ec2:DeleteNatGateway"):
            self.ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
        self.changes.append(f"deleted NAT gateway {nat['NatGatewayId']}")

    def route_tables(
        self,
        vpc_id: str,
        igw: str,
        nats: dict[str, str],
        public: dict[str, str],
        private: dict[str, str],
    ) -> dict[str, str]:
        zones = self.spec.network.availability_zones
        # part -> (default route target, subnets associated)
        wanted: dict[str, tuple[dict[str, str], list[str]]] = {
            "public": ({"GatewayId": igw}, list(public.values()))
        }
        for zone in zones:
            nat = nats.get(zone) or next(iter(nats.values()))
            part = "private" if len(nats) == 1 else f"private-{zone}"
            _, subnets = wanted.setdefault(part, ({"NatGatewayId": nat}, []))
            subnets.append(private[zone])
        with aws_call("ec2:DescribeRouteTables"):
            existing = self.ec2.describe_route_tables(
                Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, *self.me.filters(COMPONENT)]
            )["RouteTables"]
        by_part = {tag_dict(t.get("Tags")).get("platform.io/part"): t for t in existing}
        result = {}
        for part, (target, subnets) in wanted.items():
            table = by_part.get(part)
            if table is None:
                with aws_call("ec2:CreateRouteTable"):
                    table = self.ec2.create_route_table(
                        VpcId=vpc_id, TagSpecifications=self.tag_spec("route-table", part)
                    )["RouteTable"]
                self.changes.append(f"created route table {part} {table['RouteTableId']}")
            table_id = table["RouteTableId"]
            self._default_route(table, target)
            associated = {
                a.get("SubnetId"): a["RouteTableAssociationId"]
                for a in table.get("Associations", [])
                if a.get("SubnetId")
            }
            for subnet in subnets:
                if subnet not in associated:
                    self._associate(table_id, subnet)
            for subnet, association in associated.items():
                if subnet not in subnets:
                    with aws_call("ec2:DisassociateRouteTable"):
                        self.ec2.disassociate_route_table(AssociationId=association)
                    self.changes.append(f"disassociated {subnet} from {part}")
            result[part] = table_id
        for part, table in by_part.items():
            if part not in wanted:
                self._delete_route_table(table)
        return result

    def _default_route(self, table: dict, target: dict[str, str]) -> None:
        current = next(
            (r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"),
            None,
        )
        key, value = next(iter(target.items()))
        if current and current.get(key) == value and current.get("State", "active") == "active":
            return
        action = "ec2:ReplaceRoute" if current else "ec2:CreateRoute"
        with aws_call(action):
            call = self.ec2.replace_route if current else self.ec2.create_route
            call(RouteTableId=table["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", **target)
        self.changes.append(f"default route of {table['RouteTableId']} -> {value}")

    def _associate(self, table_id: str, subnet: str) -> None:
        # A subnet has one route table: move it if another of ours holds it.
        with aws_call("ec2:DescribeRouteTables"):
            holders = self.ec2.describe_route_tables(
                Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
            )["RouteTables"]
        for holder in holders:
            for a in holder.get("Associations", []):
                if a.get("SubnetId") == subnet:
                    with aws_call("ec2:ReplaceRouteTableAssociation"):
                        self.ec2.replace_route_table_association(
                            AssociationId=a["RouteTableAssociationId"], RouteTableId=table_id
                        )
                    self.changes.append(f"moved {subnet} to {table_id}")
                    return
        with aws_call("ec2:AssociateRouteTable"):
            self.ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet)
        self.changes.append(f"associated {subnet} with {table_id}")

    def _delete_route_table(self, table: dict) -> None:
        for a in table.get("Associations", []):
            if not a.get("Main"):
                with aws_call("ec2:DisassociateRouteTable"):
                    self.ec2.disassociate_route_table(AssociationId=a["RouteTableAssociationId"])
        with aws_call("ec2:DeleteRouteTable"):
            self.ec2.delete_route_table(RouteTableId=table["RouteTableId"])
        self.changes.append(f"deleted route table {table['RouteTableId']}")

    def security_group(self, vpc_id: str) -> str:
        name = f"{self.me.prefix}-cluster"
        with aws_call("ec2:DescribeSecurityGroups"):
            found = _one(
                self.ec2.describe_security_groups(
                    Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, *self.me.filters(COMPONENT)]
                )["SecurityGroups"],
                "security group",
            )
        if found is None:
            with aws_call("ec2:CreateSecurityGroup"):
                group_id = self.ec2.create_security_group(
                    GroupName=name,
                    Description="Control plane and nodes of the platform's EKS cluster",
                    VpcId=vpc_id,
                    TagSpecifications=self.tag_spec("security-group", "cluster"),
                )["GroupId"]
            self.changes.append(f"created security group {group_id}")
            permissions: list[dict] = []
        else:
            group_id, permissions = found["GroupId"], found.get("IpPermissions", [])
        # Control plane and nodes talk to each other on every port.
        self_rule = any(
            p.get("IpProtocol") == "-1"
            and any(g.get("GroupId") == group_id for g in p.get("UserIdGroupPairs", []))
            for p in permissions
        )
        if not self_rule:
            with aws_call("ec2:AuthorizeSecurityGroupIngress"):
                self.ec2.authorize_security_group_ingress(
                    GroupId=group_id,
                    IpPermissions=[
                        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group_id}]}
                    ],
                )
            self.changes.append(f"allowed traffic within {group_id}")
        return group_id

    def s3_endpoint(self, vpc_id: str, tables: list[str]) -> str:
        """A gateway endpoint for S3 on every route table: image layers and the Mimir and
        Loki buckets are reached without paying for NAT (gateway endpoints cost nothing)."""
        service = f"com.amazonaws.{self.spec.platform.region}.s3"
        with aws_call("ec2:DescribeVpcEndpoints"):
            found = _one(
                self.ec2.describe_vpc_endpoints(
                    Filters=[
                        {"Name": "vpc-id", "Values": [vpc_id]},
                        {"Name": "service-name", "Values": [service]},
                        {"Name": "vpc-endpoint-state", "Values": ["pending", "available"]},
                        *self.me.filters(COMPONENT),
                    ]
                )["VpcEndpoints"],
                "S3 endpoint",
            )
        if found is None:
            with aws_call("ec2:CreateVpcEndpoint"):
                endpoint = self.ec2.create_vpc_endpoint(
                    VpcEndpointType="Gateway",
                    VpcId=vpc_id,
                    ServiceName=service,
                    RouteTableIds=tables,
                    TagSpecifications=self.tag_spec("vpc-endpoint", "s3"),
                )["VpcEndpoint"]["VpcEndpointId"]
            self.changes.append(f"created S3 gateway endpoint {endpoint}")
            return endpoint
        endpoint, current = found["VpcEndpointId"], set(found.get("RouteTableIds", []))
        if current != set(tables):
            with aws_call("ec2:ModifyVpcEndpoint"):
                self.ec2.modify_vpc_endpoint(
                    VpcEndpointId=endpoint,
                    AddRouteTableIds=sorted(set(tables) - current),
                    RemoveRouteTableIds=sorted(current - set(tables)),
                )
            self.changes.append(f"S3 gateway endpoint {endpoint} on route tables {tables}")
        return endpoint

    def converge(self) -> Network:
        vpc_id = self.vpc()
        public = self.subnets(vpc_id, "public", self.spec.network.public_subnet_cidrs)
        private = self.subnets(vpc_id, "private", self.spec.network.private_subnet_cidrs)
        igw = self.internet_gateway(vpc_id)
        nats = self.nat_gateways(vpc_id, public)
        tables = self.route_tables(vpc_id, igw, nats, public, private)
        group = self.security_group(vpc_id)
        endpoint = self.s3_endpoint(vpc_id, sorted(tables.values()))
        return Network(
            vpc_id, public, private, igw, nats, tables, group, endpoint, changes=self.changes
        )


def ensure_network(spec: PlatformSpec, aws: AwsClients) -> Network:
    """Converge the network to the spec; ``Network.changes`` lists what was done."""
    return _Converger(spec, aws).converge()


def find_network(spec: PlatformSpec, aws: AwsClients) -> str | None:
    """The platform's VPC id, if it exists."""
    me = Identity.of(spec)
    with aws_call("ec2:DescribeVpcs"):
        vpcs = aws("ec2").describe_vpcs(Filters=me.filters(COMPONENT))["Vpcs"]
    return vpcs[0]["VpcId"] if vpcs else None


@dataclass(frozen=True)
class _Kind:
    """One kind the network teardown deletes one by one: how it is listed and deleted, and
    which interfaces hold it (an ENI filter), for the ones AWS refuses while they do."""

    label: str
    describe: str
    key: str
    ident: str
    delete: str
    held_by: str | None = None


SUBNETS = _Kind("subnet", "describe_subnets", "Subnets", "SubnetId", "delete_subnet", "subnet-id")
GROUPS = _Kind(
    "security group",
    "describe_security_groups",
    "SecurityGroups",
    "GroupId",
    "delete_security_group",
    "group-id",
)
INTERFACES = _Kind(
    "network interface",
    "describe_network_interfaces",
    "NetworkInterfaces",
    "NetworkInterfaceId",
    "delete_network_interface",
)


def _action(method: str) -> str:
    return "ec2:" + "".join(word.capitalize() for word in method.split("_"))


class _Dismantler:
    """The platform's network, deleted in reverse dependency order. What AWS refuses while
    something drains (interfaces of deleted load balancers and endpoints, a NAT gateway's
    address) is retried within the run's budget (``tasks.aws.patience``)."""

    def __init__(self, spec: PlatformSpec, aws: AwsClients, pace: Pace):
        self.spec, self.aws, self.pace = spec, aws, pace
        self.ec2, self.me = aws("ec2"), Identity.of(spec)
        self.mine = self.me.filters(COMPONENT)
        self.vpc_id = find_network(spec, aws)
        self.done: list[str] = []

    def run(self) -> list[str]:
        self.nat_gateways()
        self.addresses()
        if self.vpc_id:  # leftovers of others in the VPC: load balancers, the EKS CNI
            self.endpoints()
            self.each(INTERFACES, self.in_vpc(INTERFACES, available=True))
        self.internet_gateways()
        self.route_tables()
        self.each(SUBNETS, self.listed(SUBNETS, self.mine))
        if self.vpc_id:
            self.each(GROUPS, self.security_groups())
            self.when_free("delete_vpc", self.vpc_id, "vpc", self.vpc_blockers, VpcId=self.vpc_id)
        return self.done

    # ---------------------------------------------------------------- listing
    def listed(self, kind: _Kind, filters: list[dict]) -> list[dict]:
        with aws_call(_action(kind.describe)):
            return getattr(self.ec2, kind.describe)(Filters=filters)[kind.key]

    def in_vpc(self, kind: _Kind, available: bool = False) -> list[dict]:
        found = self.listed(kind, [{"Name": "vpc-id", "Values": [self.vpc_id]}])
        return [i for i in found if not available or i.get("Status") == "available"]

    def held(self, name: str, value: str) -> list[str]:
        """The interfaces in a subnet, group or VPC, each with what it belongs to."""
        found = self.listed(INTERFACES, [{"Name": name, "Values": [value]}])
        return [
            f"{i['NetworkInterfaceId']} ({i.get('Description') or i.get('InterfaceType')}, "
            f"{i.get('Status')})"
            for i in found
        ]

    def security_groups(self) -> list[dict]:
        """The platform's, and those a load balancer controller made for the cluster."""
        cluster = self.spec.eks.cluster_name
        return [
            g
            for g in self.in_vpc(GROUPS)
            if g["GroupName"] != "default"
            and (self.me.owns(g.get("Tags")) or of_cluster(tag_dict(g.get("Tags")), cluster))
        ]

    def vpc_blockers(self) -> list[str]:
        groups = [f"security group {g['GroupId']}" for g in self.in_vpc(GROUPS)]
        return self.held("vpc-id", self.vpc_id or "") + [
            g for g in groups if not g.endswith(" default")
        ]

    # ---------------------------------------------------------------- deleting
    def when_free(
        self, method: str, ident: str, label: str, blockers: Callable[[], list[str]], **args: str
    ) -> None:
        call = getattr(self.ec2, method)
        delete_when_free(self.pace, f"{_action(method)} {ident}", lambda: call(**args), blockers)
        self.done.append(f"{label} {ident}")

    def each(self, kind: _Kind, items: list[dict]) -> None:
        held_by = kind.held_by
        for item in items:
            ident = item[kind.ident]
            blockers = (lambda i=ident: self.held(held_by, i)) if held_by else list
            self.when_free(kind.delete, ident, kind.label, blockers, **{kind.ident: ident})

    def nat_gateways(self) -> None:
        with aws_call("ec2:DescribeNatGateways"):
            nats = self.ec2.describe_nat_gateways(
                Filters=[*self.mine, {"Name": "state", "Values": ["pending", "available"]}]
            )["NatGateways"]
        for nat in nats:
            with aws_call("ec2:DeleteNatGateway"):
                self.ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
            self.done.append(f"nat {nat['NatGatewayId']}")
        if nats:
            with aws_call("ec2:DescribeNatGateways (wait deleted)"):
                self.ec2.get_waiter("nat_gateway_deleted").wait(
                    NatGatewayIds=[n["NatGatewayId"] for n in nats],
                    WaiterConfig=self.pace.waiter_config(15, 10 * 60),
                )

    def addresses(self) -> None:
        """The NAT gateways' Elastic IPs: free once their gateway is deleted."""
        with aws_call("ec2:DescribeAddresses"):
            addresses = self.ec2.describe_addresses(Filters=self.mine)["Addresses"]
        for address in addresses:
            ident = address["AllocationId"]

            def associated(ident: str = ident) -> list[str]:
                with aws_call("ec2:DescribeAddresses"):
                    found = self.ec2.describe_addresses(AllocationIds=[ident])["Addresses"]
                return [f"{a.get('NetworkInterfaceId')}" for a in found if a.get("AssociationId")]

            self.when_free("release_address", ident, "eip", associated, AllocationId=ident)

    def endpoints(self) -> None:
        """Every endpoint in the VPC: the platform's S3 gateway and any other made in it."""
        with aws_call("ec2:DescribeVpcEndpoints"):
            endpoints = self.ec2.describe_vpc_endpoints(
                Filters=[
                    {"Name": "vpc-id", "Values": [self.vpc_id]},
                    {"Name": "vpc-endpoint-state", "Values": ["pending", "available"]},
                ]
            )["VpcEndpoints"]
        if endpoints:
            ids = [e["VpcEndpointId"] for e in endpoints]
            with aws_call("ec2:DeleteVpcEndpoints"):
                self.ec2.delete_vpc_endpoints(VpcEndpointIds=ids)
            self.done += [f"vpc endpoint {i}" for i in ids]

    def internet_gateways(self) -> None:
        with aws_call("ec2:DescribeInternetGateways"):
            gateways = self.ec2.describe_internet_gateways(Filters=self.mine)["InternetGateways"]
        for igw in gateways:
            ident = igw["InternetGatewayId"]
            for attachment in igw.get("Attachments", []):
                vpc = attachment["VpcId"]
                # Refused while public addresses in the VPC are mapped (load balancers').
                delete_when_free(
                    self.pace,
                    f"ec2:DetachInternetGateway {ident}",
                    lambda vpc=vpc, igw=ident: self.ec2.detach_internet_gateway(
                        InternetGatewayId=igw, VpcId=vpc
                    ),
                    lambda vpc=vpc: self.held("vpc-id", vpc),
                )
            with aws_call("ec2:DeleteInternetGateway"):
                self.ec2.delete_internet_gateway(InternetGatewayId=ident)
            self.done.append(f"igw {ident}")

    def route_tables(self) -> None:
        with aws_call("ec2:DescribeRouteTables"):
            tables = self.ec2.describe_route_tables(Filters=self.mine)["RouteTables"]
        converger = _Converger(self.spec, self.aws)
        for table in tables:
            converger._delete_route_table(table)
            self.done.append(f"route table {table['RouteTableId']}")


def delete_network(spec: PlatformSpec, aws: AwsClients, pace: Pace) -> list[str]:
    """Remove the network in reverse order; returns what was deleted."""
    return _Dismantler(spec, aws, pace).run()
