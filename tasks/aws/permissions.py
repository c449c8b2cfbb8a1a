"""The IAM permissions the platform's runner needs, in one place, as data.

``OPERATIONS`` lists, for each AWS service (botocore's name), every operation the product
calls (runs, convergence, teardown, inventory, the account check of ``platformctl plan``)
and the IAM actions each needs, each on a *scope*: which resources, under which condition.
Where the API name and the IAM action differ, the table says so (S3 ``HeadBucket`` is
``s3:ListBucket``); where a call needs more than its own action (a create that tags, a role
passed to EKS, a service-linked role made on first use), the extra grants are listed with
it; an operation that needs no permission (STS ``GetCallerIdentity``) has none.

``iam_policy`` turns the table into a policy document for one spec and account: one
statement per scope, resources named from the spec where AWS names them (roles, buckets,
the cluster, its log group, the quotas), the platform's ownership tags as conditions where
the resources are EC2's, and ``*`` only where AWS offers no resource-level permission
(Describe and List calls). A test (tests/e2e/test_teardown_flow.py) records every operation
of a whole run, its convergence, its teardown and the account check on the sandbox, and
holds the table to exactly those.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from blueprint.quotas import EVERY_QUOTA
from blueprint.spec import PlatformSpec, bucket_name
from tasks.aws.iam import SERVICE_ACCOUNT_ROLES, role_names
from tasks.aws.identity import ENVIRONMENT_TAG, NAME_TAG, Identity
from tasks.aws.loadbalancers import CLUSTER_TAG_PREFIX, CONTROLLER_CLUSTER_TAG

# Written where the account is unknown (no --account, no credentials): CloudFormation's
# Fn::Sub replaces it; anywhere else, put the account ID in its place.
ACCOUNT_PLACEHOLDER = "${AWS::AccountId}"

# Scopes: which resources a grant is on, and under which condition (see _statements).
ANY = "any"  # "*": Describe/List calls, which take no resource-level permission
EC2_NEW = "ec2-new:"  # + resource type: created by the call, tagged as the platform's in it
EC2_OURS = "ec2-ours"  # EC2 resources that carry the platform's tags
EC2_TAG_ON_CREATE = "ec2-tag-on-create"  # ec2:CreateTags, only as part of a create call
ROLES = "roles"  # the platform's IAM roles, by name
PASS_ROLES = "pass-roles"  # the platform's roles, handed to EKS
SERVICE_LINKED = "service-linked-roles"  # EKS's own roles, made on first use in an account
OIDC = "oidc-providers"  # the EKS clusters' OIDC providers in the region
CLUSTER = "eks-cluster"  # the spec's cluster, its node groups and add-ons
LOG_GROUP = "log-group"  # the cluster's control-plane log group
LOG_GROUPS = "log-groups"  # the region's log groups (DescribeLogGroups lists by prefix)
BUCKETS = "buckets"  # the Mimir and Loki buckets
OBJECTS = "objects"  # the objects in them (a teardown empties them)
CLUSTER_LOAD_BALANCERS = "cluster-load-balancers"  # tagged for the cluster
CLUSTER_TARGET_GROUPS = "cluster-target-groups"  # the load balancer controller's, left over
LEFT_INTERFACES = "left-interfaces"  # detached interfaces a deleted load balancer left
QUOTAS = "quotas"  # the quotas `plan --check-account` reads

Grant = tuple[str, str]  # (IAM action, scope)

# Services whose IAM prefix is not their botocore name.
IAM_PREFIX = {"elb": "elasticloadbalancing", "elbv2": "elasticloadbalancing"}
SERVICE_LINKED_ROLES = {
    "eks.amazonaws.com": "AWSServiceRoleForAmazonEKS",
    "eks-nodegroup.amazonaws.com": "AWSServiceRoleForAmazonEKSNodegroup",
}


def _own(service: str, operation: str, scope: str, *more: Grant) -> tuple[Grant, ...]:
    return ((f"{service}:{operation}", scope), *more)


def _reads(service: str, *operations: str, scope: str = ANY) -> dict[str, tuple[Grant, ...]]:
    return {op: _own(service, op, scope) for op in operations}


def _ec2_create(operation: str, new: str, parent: bool = True) -> tuple[Grant, ...]:
    """A create that tags what it makes: the new resource only with the platform's tags in
    the request, the resources it is made in (a VPC, a subnet) only when they are ours."""
    grants: list[Grant] = [(f"ec2:{operation}", EC2_NEW + new)]
    if parent:
        grants.append((f"ec2:{operation}", EC2_OURS))
    grants.append(("ec2:CreateTags", EC2_TAG_ON_CREATE))
    return tuple(grants)


def _ec2_ours(*operations: str) -> dict[str, tuple[Grant, ...]]:
    return {op: _own("ec2", op, EC2_OURS) for op in operations}


PASS_TO_EKS: Grant = ("iam:PassRole", PASS_ROLES)
EKS_TAGS: Grant = ("eks:TagResource", CLUSTER)

OPERATIONS: dict[str, dict[str, tuple[Grant, ...]]] = {
    "ec2": {
        **_reads(
            "ec2",
            "DescribeAddresses",
            "DescribeInstances",  # account check: vCPUs in use
            "DescribeInternetGateways",
            "DescribeLaunchTemplateVersions",
            "DescribeLaunchTemplates",
            "DescribeNatGateways",
            "DescribeNetworkInterfaces",
            "DescribeRouteTables",
            "DescribeSecurityGroups",
            "DescribeSubnets",
            "DescribeVolumes",
            "DescribeVpcAttribute",
            "DescribeVpcEndpoints",
            "DescribeVpcs",
        ),
        # Untagged, made by ELB; the teardown deletes only those detached in the VPC.
        "DeleteNetworkInterface": _own("ec2", "DeleteNetworkInterface", LEFT_INTERFACES),
        "CreateVpc": _ec2_create("CreateVpc", "vpc", parent=False),
        "CreateSubnet": _ec2_create("CreateSubnet", "subnet"),
        "CreateInternetGateway": _ec2_create("CreateInternetGateway", "internet-gateway", False),
        "AllocateAddress": _ec2_create("AllocateAddress", "elastic-ip", parent=False),
        "CreateNatGateway": _ec2_create("CreateNatGateway", "natgateway"),
        "CreateRouteTable": _ec2_create("CreateRouteTable", "route-table"),
        "CreateSecurityGroup": _ec2_create("CreateSecurityGroup", "security-group"),
        "CreateVpcEndpoint": _ec2_create("CreateVpcEndpoint", "vpc-endpoint"),
        "CreateLaunchTemplate": _ec2_create("CreateLaunchTemplate", "launch-template", False),
        **_ec2_ours(
            "AssociateRouteTable",
            "AttachInternetGateway",
            "AuthorizeSecurityGroupIngress",
            "CreateLaunchTemplateVersion",
            "CreateRoute",
            "CreateTags",  # ELB role tags put back on a subnet
            "DeleteInternetGateway",
            "DeleteLaunchTemplate",
            "DeleteNatGateway",
            "DeleteRouteTable",
            "DeleteSecurityGroup",
            "DeleteSubnet",
            "DeleteVpc",
            "DeleteVolume",  # tagged through the StorageClass
            "DeleteVpcEndpoints",
            "DetachInternetGateway",
            "DisassociateRouteTable",
            "ModifySubnetAttribute",
            "ModifyVpcAttribute",
            "ModifyVpcEndpoint",
            "ReleaseAddress",
            "ReplaceRoute",
            "ReplaceRouteTableAssociation",
        ),
    },
    "eks": {
        **_reads("eks", "DescribeAddonVersions", "DescribeClusterVersions", "ListClusters"),
        "CreateAccessEntry": _own("eks", "CreateAccessEntry", CLUSTER, EKS_TAGS),
        "CreateCluster": _own(
            "eks",
            "CreateCluster",
            CLUSTER,
            EKS_TAGS,
            PASS_TO_EKS,
            ("iam:CreateServiceLinkedRole", SERVICE_LINKED),
        ),
        "CreateNodegroup": _own(
            "eks",
            "CreateNodegroup",
            CLUSTER,
            EKS_TAGS,
            PASS_TO_EKS,
            ("iam:CreateServiceLinkedRole", SERVICE_LINKED),
        ),
        "CreateAddon": _own("eks", "CreateAddon", CLUSTER, EKS_TAGS, PASS_TO_EKS),
        "UpdateAddon": _own("eks", "UpdateAddon", CLUSTER, PASS_TO_EKS),
        **_reads(
            "eks",
            "AssociateAccessPolicy",
            "DeleteAccessEntry",
            "DeleteAddon",
            "DeleteCluster",
            "DeleteNodegroup",
            "DescribeAccessEntry",
            "DescribeAddon",
            "DescribeCluster",
            "DescribeNodegroup",
            "DescribeUpdate",
            "ListAccessEntries",
            "ListAddons",
            "ListAssociatedAccessPolicies",
            "ListNodegroups",
            "UpdateClusterConfig",
            "UpdateNodegroupConfig",
            "UpdateNodegroupVersion",
            scope=CLUSTER,
        ),
    },
    "iam": {
        **_reads("iam", "ListOpenIDConnectProviders", "ListRoles"),
        "CreateRole": _own("iam", "CreateRole", ROLES, ("iam:TagRole", ROLES)),
        **_reads(
            "iam",
            "AttachRolePolicy",
            "DeleteRole",
            "DeleteRolePolicy",
            "DetachRolePolicy",
            "GetRole",
            "GetRolePolicy",
            "ListAttachedRolePolicies",
            "ListRolePolicies",
            "ListRoleTags",
            "PutRolePolicy",
            "UpdateAssumeRolePolicy",
            scope=ROLES,
        ),
        "CreateOpenIDConnectProvider": _own(
            "iam", "CreateOpenIDConnectProvider", OIDC, ("iam:TagOpenIDConnectProvider", OIDC)
        ),
        **_reads("iam", "DeleteOpenIDConnectProvider", "GetOpenIDConnectProvider", scope=OIDC),
    },
    "s3": {
        "ListBuckets": (("s3:ListAllMyBuckets", ANY),),
        "CreateBucket": (("s3:CreateBucket", BUCKETS), ("s3:TagResource", BUCKETS)),
        "HeadBucket": (("s3:ListBucket", BUCKETS),),
        "ListObjectVersions": (("s3:ListBucketVersions", BUCKETS),),
        "DeleteObjects": (("s3:DeleteObject", OBJECTS), ("s3:DeleteObjectVersion", OBJECTS)),
        "GetBucketEncryption": (("s3:GetEncryptionConfiguration", BUCKETS),),
        "PutBucketEncryption": (("s3:PutEncryptionConfiguration", BUCKETS),),
        "GetBucketLifecycleConfiguration": (("s3:GetLifecycleConfiguration", BUCKETS),),
        "PutBucketLifecycleConfiguration": (("s3:PutLifecycleConfiguration", BUCKETS),),
        "GetPublicAccessBlock": (("s3:GetBucketPublicAccessBlock", BUCKETS),),
        "PutPublicAccessBlock": (("s3:PutBucketPublicAccessBlock", BUCKETS),),
        **_reads(
            "s3",
            "DeleteBucket",
            "GetBucketTagging",
            "GetBucketVersioning",
            "PutBucketTagging",
            "PutBucketVersioning",
            scope=BUCKETS,
        ),
    },
    "logs": {
        **_reads("logs", "DescribeLogGroups", scope=LOG_GROUPS),
        "CreateLogGroup": _own(
            "logs", "CreateLogGroup", LOG_GROUP, ("logs:TagResource", LOG_GROUP)
        ),
        **_reads("logs", "DeleteLogGroup", "PutRetentionPolicy", scope=LOG_GROUP),
    },
    "elb": {
        **_reads("elasticloadbalancing", "DescribeLoadBalancers", "DescribeTags"),
        **_reads("elasticloadbalancing", "DeleteLoadBalancer", scope=CLUSTER_LOAD_BALANCERS),
    },
    "elbv2": {
        **_reads(
            "elasticloadbalancing", "DescribeLoadBalancers", "DescribeTags", "DescribeTargetGroups"
        ),
        **_reads("elasticloadbalancing", "DeleteLoadBalancer", scope=CLUSTER_LOAD_BALANCERS),
        **_reads("elasticloadbalancing", "DeleteTargetGroup", scope=CLUSTER_TARGET_GROUPS),
    },
    "sts": {
        # Needs no permission; EKS tokens are presigned GetCallerIdentity URLs, never sent.
        "GetCallerIdentity": (),
    },
    "service-quotas": {
        **_reads("servicequotas", "GetServiceQuota", scope=QUOTAS),
    },
}


class UnknownOperation(KeyError):
    """An operation the product called that the table does not hold."""


def grants_of(operation: str) -> tuple[Grant, ...]:
    """The grants of ``service:Operation`` (botocore's service name, e.g. ``elbv2``)."""
    service, _, name = operation.partition(":")
    try:
        return OPERATIONS[service][name]
    except KeyError:
        raise UnknownOperation(operation) from None


def actions_of(operations: Iterable[str]) -> set[str]:
    """The IAM actions the given operations need."""
    return {action for op in operations for action, _ in grants_of(op)}


def every_operation() -> list[str]:
    return sorted(f"{s}:{op}" for s, ops in OPERATIONS.items() for op in ops)


# ----------------------------------------------------------------------- the document


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class _Names:
    """The ARNs the policy names, for one spec, account and region."""

    spec: PlatformSpec
    account: str

    @property
    def arn(self) -> str:
        return f"arn:{partition(self.spec.platform.region)}"

    def ec2(self, what: str) -> str:
        return f"{self.arn}:ec2:{self.spec.platform.region}:{self.account}:{what}"

    def roles(self) -> list[str]:
        prefix = Identity.of(self.spec).prefix
        names = [*role_names(self.spec).values()]
        names += [f"{prefix}-{r.suffix}" for r in SERVICE_ACCOUNT_ROLES]
        return [f"{self.arn}:iam::{self.account}:role/{name}" for name in names]

    def eks(self, what: str) -> str:
        return f"{self.arn}:eks:{self.spec.platform.region}:{self.account}:{what}"

    def logs(self, what: str) -> str:
        return f"{self.arn}:logs:{self.spec.platform.region}:{self.account}:log-group:{what}"

    def buckets(self) -> list[str]:
        return [
            f"{self.arn}:s3:::{bucket_name(self.spec, part, self.account)}"
            for part in ("mimir", "loki")
        ]


def _owner_condition(key: str, spec: PlatformSpec) -> dict[str, Any]:
    owner = Identity.of(spec).owner_tags()
    return {"StringEquals": {f"{key}/{tag}": owner[tag] for tag in (NAME_TAG, ENVIRONMENT_TAG)}}


def _statements(
    scope: str, actions: list[str], names: _Names, created_with_tags: list[str], new: list[str]
) -> list[dict[str, Any]]:
    spec, region = names.spec, names.spec.platform.region
    cluster = spec.eks.cluster_name

    def one(sid: str, resources: list[str], condition: dict | None = None) -> dict[str, Any]:
        statement: dict[str, Any] = {
            "Sid": sid,
            "Effect": "Allow",
            "Action": actions,
            "Resource": resources,
        }
        if condition:
            statement["Condition"] = condition
        return statement

    if scope == ANY:
        return [one("DescribeAndList", ["*"])]
    if scope == EC2_NEW:
        resources = [names.ec2(f"{kind}/*") for kind in new]
        return [one("Ec2CreateTagged", resources, _owner_condition("aws:RequestTag", spec))]
    if scope == EC2_OURS:
        return [one("Ec2Owned", [names.ec2("*/*")], _owner_condition("aws:ResourceTag", spec))]
    if scope == EC2_TAG_ON_CREATE:
        condition = {"StringEquals": {"ec2:CreateAction": created_with_tags}}
        return [one("Ec2TagOnCreate", [names.ec2("*/*")], condition)]
    if scope == ROLES:
        return [one("PlatformRoles", names.roles())]
    if scope == PASS_ROLES:
        condition = {"StringEquals": {"iam:PassedToService": "eks.amazonaws.com"}}
        return [one("PassPlatformRolesToEks", names.roles(), condition)]
    if scope == SERVICE_LINKED:
        resources = [
            f"{names.arn}:iam::{names.account}:role/aws-service-role/{service}/{role}"
            for service, role in SERVICE_LINKED_ROLES.items()
        ]
        condition = {"StringEquals": {"iam:AWSServiceName": sorted(SERVICE_LINKED_ROLES)}}
        return [one("EksServiceLinkedRoles", resources, condition)]
    if scope == OIDC:
        host = f"oidc.eks.{region}.amazonaws.com/id/*"
        return [
            one("ClusterOidcProviders", [f"{names.arn}:iam::{names.account}:oidc-provider/{host}"])
        ]
    if scope == CLUSTER:
        resources = [
            names.eks(f"cluster/{cluster}"),
            names.eks(f"nodegroup/{cluster}/*/*"),
            names.eks(f"addon/{cluster}/*/*"),
            names.eks(f"access-entry/{cluster}/*"),
        ]
        return [one("EksCluster", resources)]
    if scope == LOG_GROUP:
        group = f"/aws/eks/{cluster}/cluster"
        return [one("ControlPlaneLogGroup", [names.logs(group), names.logs(f"{group}:*")])]
    if scope == LOG_GROUPS:
        return [one("LogGroupsInRegion", [names.logs("*")])]
    if scope == BUCKETS:
        return [one("PlatformBuckets", names.buckets())]
    if scope == OBJECTS:
        return [one("PlatformBucketObjects", [f"{b}/*" for b in names.buckets()])]
    if scope == CLUSTER_LOAD_BALANCERS:
        balancers = [f"{names.arn}:elasticloadbalancing:{region}:{names.account}:loadbalancer/*"]
        return [
            one(
                "LoadBalancersOfTheCluster",
                balancers,
                {"Null": {f"aws:ResourceTag/{CLUSTER_TAG_PREFIX}{cluster}": "false"}},
            ),
            one(
                "LoadBalancersOfTheClusterController",
                balancers,
                {"StringEquals": {f"aws:ResourceTag/{CONTROLLER_CLUSTER_TAG}": cluster}},
            ),
        ]
    if scope == CLUSTER_TARGET_GROUPS:
        groups = [f"{names.arn}:elasticloadbalancing:{region}:{names.account}:targetgroup/*"]
        condition = {"StringEquals": {f"aws:ResourceTag/{CONTROLLER_CLUSTER_TAG}": cluster}}
        return [one("TargetGroupsOfTheClusterController", groups, condition)]
    if scope == LEFT_INTERFACES:
        # ELB's interfaces carry no tags and the VPC's ID is not known before it exists.
        return [one("InterfacesLeftByLoadBalancers", [names.ec2("network-interface/*")])]
    if scope == QUOTAS:
        resources = [
            f"{names.arn}:servicequotas:{region}:{names.account}:{q.service}/{q.code}"
            for q in EVERY_QUOTA
        ]
        return [one("ServiceQuotas", resources)]
    raise ValueError(f"unknown scope {scope!r}")


def iam_policy(
    spec: PlatformSpec, account_id: str, operations: Iterable[str] | None = None
) -> dict[str, Any]:
    """The policy document allowing ``operations`` (default: all the product calls)."""
    chosen = sorted(set(operations)) if operations is not None else every_operation()
    by_scope: dict[str, set[str]] = {}
    new: set[str] = set()
    created_with_tags: set[str] = set()
    for operation in chosen:
        grants = grants_of(operation)
        for action, scope in grants:
            if scope.startswith(EC2_NEW):
                new.add(scope.removeprefix(EC2_NEW))
                scope = EC2_NEW
            by_scope.setdefault(scope, set()).add(action)
        if ("ec2:CreateTags", EC2_TAG_ON_CREATE) in grants:
            created_with_tags.add(operation.partition(":")[2])
    names = _Names(spec, account_id)
    statements = []
    order = [ANY, EC2_NEW, EC2_OURS, EC2_TAG_ON_CREATE]
    for scope in sorted(by_scope, key=lambda s: (order.index(s) if s in order else 9, s)):
        statements += _statements(
            scope, sorted(by_scope[scope]), names, sorted(created_with_tags), sorted(new)
        )
    return {"Version": "2012-10-17", "Statement": statements}


def policy_actions(document: dict[str, Any]) -> set[str]:
    """Every action a policy document names."""
    found: set[str] = set()
    for statement in document["Statement"]:
        actions = statement["Action"]
        found |= {actions} if isinstance(actions, str) else set(actions)
    return found
