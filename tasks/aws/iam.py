"""IAM: the cluster and node roles with the managed policies EKS needs, the cluster's OIDC
provider, and the service-account roles (IRSA): ebs-csi, Mimir and Loki (each to its own
bucket), external-dns and cert-manager where DNS is Route 53, and the in-cluster runner.

Least privilege: the node role holds only what EKS needs of a node. Anything a pod needs
goes to its service account's role, since every pod on a node could use the node role
through the instance metadata service."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from blueprint.spec import RUNNER_JOB_ACCOUNT, SERVICE_ACCOUNTS, PlatformSpec, bucket_name
from tasks.aws.clients import AwsClients
from tasks.aws.errors import AwsError, aws_call, create_or_adopt
from tasks.aws.identity import Identity

COMPONENT = "iam"
MANAGED = "arn:aws:iam::aws:policy/"
CLUSTER_POLICIES = (MANAGED + "AmazonEKSClusterPolicy",)
NODE_POLICIES = (
    MANAGED + "AmazonEKSWorkerNodePolicy",
    MANAGED + "AmazonEKS_CNI_Policy",
    MANAGED + "AmazonEC2ContainerRegistryReadOnly",
)
EBS_CSI_POLICY = MANAGED + "service-role/AmazonEBSCSIDriverPolicy"
# Route 53 access for DNS records (external-dns) and DNS-01 challenges (cert-manager).
ROUTE53_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["route53:ChangeResourceRecordSets"],
            "Resource": ["arn:aws:route53:::hostedzone/*"],
        },
        {
            "Effect": "Allow",
            "Action": [
                "route53:ListHostedZones",
                "route53:ListResourceRecordSets",
                "route53:GetChange",
            ],
            "Resource": ["*"],
        },
    ],
}


def bucket_policy(part: str) -> Callable[[PlatformSpec, str], dict[str, Any]]:
    """Read and write one object-storage bucket, and nothing else."""

    def policy(spec: PlatformSpec, account_id: str) -> dict[str, Any]:
        arn = f"arn:aws:s3:::{bucket_name(spec, part, account_id)}"
        return {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [arn]},
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    "Resource": [f"{arn}/*"],
                },
            ],
        }

    return policy


def _route53(spec: PlatformSpec, account_id: str) -> dict[str, Any]:
    return ROUTE53_POLICY


def _dns_on_route53(spec: PlatformSpec) -> bool:
    return spec.ingress.external_dns.provider == "aws"


def _runner_policy(spec: PlatformSpec, account_id: str) -> dict[str, Any]:
    """The in-cluster runner does what any runner of the platform does: the least-privilege
    policy of ``platformctl iam-policy`` (about 9 KB; a role's inline policies may hold 10)."""
    from tasks.aws.permissions import iam_policy  # it names this module's roles

    return iam_policy(spec, account_id)


@dataclass(frozen=True)
class ServiceAccountRole:
    suffix: str  # the role is <platform>-<environment>-<suffix>
    namespace: str  # a workflow (its namespace in the spec) or a literal namespace
    account: str  # the Kubernetes service account trusted to assume it
    managed: tuple[str, ...] = ()
    inline: Callable[[PlatformSpec, str], dict[str, Any]] | None = None
    wanted: Callable[[PlatformSpec], bool] = lambda spec: True


SERVICE_ACCOUNT_ROLES = (
    ServiceAccountRole("ebs-csi", "kube-system", "ebs-csi-controller-sa", (EBS_CSI_POLICY,)),
    ServiceAccountRole(
        "mimir", "observability", SERVICE_ACCOUNTS["mimir"], inline=bucket_policy("mimir")
    ),
    ServiceAccountRole(
        "loki", "observability", SERVICE_ACCOUNTS["loki"], inline=bucket_policy("loki")
    ),
    # Route 53 only: with Cloudflare DNS these two call no AWS API at all.
    ServiceAccountRole(
        "external-dns", "ingress", "external-dns", inline=_route53, wanted=_dns_on_route53
    ),
    ServiceAccountRole(
        "cert-manager", "ingress", "cert-manager", inline=_route53, wanted=_dns_on_route53
    ),
    # The flow-run jobs of the in-cluster worker (catalogue component `runner`, namespace
    # prefect); the role also gets an access entry as cluster admin.
    ServiceAccountRole("runner", "prefect", RUNNER_JOB_ACCOUNT, inline=_runner_policy),
)


def _trust(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def _web_identity_trust(provider_arn: str, issuer: str, subject: str) -> dict[str, Any]:
    host = issuer.removeprefix("https://")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{host}:sub": subject, f"{host}:aud": "sts.amazonaws.com"}
                },
            }
        ],
    }


def _document(value: str | dict) -> dict:
    """IAM returns policy documents URL-encoded (real AWS) or as dicts (boto3 decodes some)."""
    if isinstance(value, dict):
        return value
    return json.loads(unquote(value))


@dataclass
class Roles:
    cluster_role_arn: str
    node_role_arn: str
    changes: list[str] = field(default_factory=list)


class _Roles:
    def __init__(self, spec: PlatformSpec, aws: AwsClients):
        self.iam, self.me = aws("iam"), Identity.of(spec)
        self.changes: list[str] = []

    def _get(self, name: str) -> dict | None:
        try:
            with aws_call("iam:GetRole"):
                return self.iam.get_role(RoleName=name)["Role"]
        except AwsError as exc:
            if exc.code != "NoSuchEntity":
                raise
        return None

    def role(
        self,
        name: str,
        trust: dict,
        policies: tuple[str, ...],
        inline: dict | None = None,
    ) -> str:
        tags = self.me.tag_list(COMPONENT, name)
        role = self._get(name)
        if role is None:
            created = create_or_adopt(
                "iam:CreateRole",
                lambda: self.iam.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=json.dumps(trust),
                    Description=f"{self.me.prefix} platform: {name}",
                    Tags=tags,
                )["Role"],
                "EntityAlreadyExists",
            )
            if created is not None:
                self.changes.append(f"created role {name}")
            role = created or self._get(name)
            assert role is not None, name
        self.me.claim("IAM role", name, role.get("Tags"))
        if _document(role["AssumeRolePolicyDocument"]) != trust:
            with aws_call("iam:UpdateAssumeRolePolicy"):
                self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
            self.changes.append(f"updated trust of {name}")
        with aws_call("iam:ListAttachedRolePolicies"):
            attached = {
                p["PolicyArn"]
                for page in self.iam.get_paginator("list_attached_role_policies").paginate(
                    RoleName=name
                )
                for p in page["AttachedPolicies"]
            }
        for arn in set(policies) - attached:
            with aws_call("iam:AttachRolePolicy"):
                self.iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            self.changes.append(f"attached {arn.rsplit('/', 1)[-1]} to {name}")
        for arn in attached - set(policies):
            with aws_call("iam:DetachRolePolicy"):
                self.iam.detach_role_policy(RoleName=name, PolicyArn=arn)
            self.changes.append(f"detached {arn.rsplit('/', 1)[-1]} from {name}")
        self._inline(name, inline)
        return role["Arn"]

    def _inline(self, role: str, document: dict | None) -> None:
        """The role's inline policy as given; none given, an earlier one is removed (e.g. the
        node role's bucket access, now the writers' own roles')."""
        policy = f"{role}-inline"
        try:
            with aws_call("iam:GetRolePolicy"):
                current = self.iam.get_role_policy(RoleName=role, PolicyName=policy)
            if document is not None and _document(current["PolicyDocument"]) == document:
                return
        except AwsError as exc:
            if exc.code != "NoSuchEntity":
                raise
            if document is None:
                return
        if document is None:
            with aws_call("iam:DeleteRolePolicy"):
                self.iam.delete_role_policy(RoleName=role, PolicyName=policy)
            self.changes.append(f"removed inline policy of {role}")
            return
        with aws_call("iam:PutRolePolicy"):
            self.iam.put_role_policy(
                RoleName=role, PolicyName=policy, PolicyDocument=json.dumps(document)
            )
        self.changes.append(f"set inline policy of {role}")


def role_names(spec: PlatformSpec) -> dict[str, str]:
    prefix = Identity.of(spec).prefix
    return {"cluster": f"{prefix}-eks-cluster", "node": f"{prefix}-eks-node"}


def ensure_roles(spec: PlatformSpec, aws: AwsClients) -> Roles:
    """The cluster role (assumed by EKS) and the node role (assumed by EC2 instances)."""
    roles = _Roles(spec, aws)
    names = role_names(spec)
    cluster = roles.role(names["cluster"], _trust("eks.amazonaws.com"), CLUSTER_POLICIES)
    node = roles.role(names["node"], _trust("ec2.amazonaws.com"), NODE_POLICIES)
    return Roles(cluster, node, roles.changes)


def ensure_service_account_roles(
    spec: PlatformSpec, aws: AwsClients, oidc_issuer: str
) -> tuple[dict[str, str], list[str]]:
    """The cluster's OIDC provider and a role per service account that calls AWS.

    Returns ({role suffix: role ARN}, changes).
    """
    iam, me = aws("iam"), Identity.of(spec)
    changes: list[str] = []
    host = oidc_issuer.removeprefix("https://")
    with aws_call("iam:ListOpenIDConnectProviders"):
        arns = [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    provider = next((a for a in arns if a.endswith(f"oidc-provider/{host}")), None)
    if provider is None:
        provider = create_or_adopt(
            "iam:CreateOpenIDConnectProvider",
            lambda: iam.create_open_id_connect_provider(
                Url=oidc_issuer,
                ClientIDList=["sts.amazonaws.com"],
                # IAM no longer checks thumbprints for EKS issuers; the field stays required.
                ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"],
                Tags=me.tag_list(COMPONENT, "oidc"),
            )["OpenIDConnectProviderArn"],
            "EntityAlreadyExists",
        )
        if provider is None:  # created meanwhile: it is the one for this issuer
            with aws_call("iam:ListOpenIDConnectProviders"):
                listed = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
            provider = next(p["Arn"] for p in listed if p["Arn"].endswith(f"/{host}"))
        else:
            changes.append(f"created OIDC provider for {host}")
    roles = _Roles(spec, aws)
    result = {}
    for wanted in SERVICE_ACCOUNT_ROLES:
        name = f"{me.prefix}-{wanted.suffix}"
        if not wanted.wanted(spec):
            if _delete_role(iam, me, name):  # made when the spec still wanted it
                changes.append(f"deleted role {name} (not needed by the spec)")
            continue
        namespace = spec.namespaces.get(wanted.namespace, wanted.namespace)
        trust = _web_identity_trust(
            provider, oidc_issuer, f"system:serviceaccount:{namespace}:{wanted.account}"
        )
        inline = wanted.inline(spec, aws.account_id()) if wanted.inline else None
        result[wanted.suffix] = roles.role(name, trust, wanted.managed, inline)
    return result, changes + roles.changes


def _delete_role(iam: Any, me: Identity, name: str) -> bool:
    """Delete a role of the platform with its policies; False when there is none. A role of
    that name without the platform's tags stops here, untouched (``NotOurs``)."""
    try:
        with aws_call("iam:GetRole"):
            me.claim("IAM role", name, iam.get_role(RoleName=name)["Role"].get("Tags"))
    except AwsError as exc:
        if exc.code == "NoSuchEntity":
            return False
        raise
    with aws_call("iam:ListAttachedRolePolicies"):
        attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    for policy in attached:
        with aws_call("iam:DetachRolePolicy"):
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    with aws_call("iam:ListRolePolicies"):
        inline = iam.list_role_policies(RoleName=name)["PolicyNames"]
    for policy in inline:
        with aws_call("iam:DeleteRolePolicy"):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
    with aws_call("iam:DeleteRole"):
        iam.delete_role(RoleName=name)
    return True


def delete_roles(spec: PlatformSpec, aws: AwsClients, oidc_issuer: str | None = None) -> list[str]:
    """Delete every role of the platform (and the OIDC provider when its issuer is given)."""
    iam, me = aws("iam"), Identity.of(spec)
    names = [
        *role_names(spec).values(),
        *(f"{me.prefix}-{r.suffix}" for r in SERVICE_ACCOUNT_ROLES),
    ]
    done = [f"role {name}" for name in names if _delete_role(iam, me, name)]
    if oidc_issuer:
        host = oidc_issuer.removeprefix("https://")
        with aws_call("iam:ListOpenIDConnectProviders"):
            arns = [
                p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
            ]
        for arn in arns:
            if arn.endswith(f"oidc-provider/{host}"):
                with aws_call("iam:GetOpenIDConnectProvider"):
                    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
                me.claim("OIDC provider", host, provider.get("Tags"))
                with aws_call("iam:DeleteOpenIDConnectProvider"):
                    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
                done.append(f"oidc provider {quote(host)}")
    return done


def oidc_issuers(spec: PlatformSpec, aws: AwsClients) -> list[str]:
    """Issuer URLs of the OIDC providers the platform created, found by its tags (so a
    teardown still finds them once the cluster that named them is gone)."""
    iam, me = aws("iam"), Identity.of(spec)
    with aws_call("iam:ListOpenIDConnectProviders"):
        arns = [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    issuers = []
    for arn in arns:
        with aws_call("iam:GetOpenIDConnectProvider"):
            provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        if me.owns(provider.get("Tags")):
            issuers.append("https://" + provider["Url"].removeprefix("https://"))
    return issuers
