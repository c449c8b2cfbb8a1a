"""Who may use the cluster's API: EKS access entries for the spec's admin principals.

The cluster is created in the API authentication mode, so access is given by access entries
and access policies, not by the aws-auth ConfigMap. Each principal in ``eks.admin_principals``
(and the in-cluster runner's role) gets a STANDARD entry, tagged as the platform's, with
AmazonEKSClusterAdminPolicy over the whole cluster. Convergent: a missing entry or policy is
added; an entry of ours whose principal has left the spec is deleted. Entries the platform
did not make (the creator's, the ones EKS makes for node roles, anyone's made by hand) are
never touched.
"""

from __future__ import annotations

from typing import Any

from blueprint.pace import Pace
from blueprint.spec import PlatformSpec
from tasks.aws.clients import AwsClients
from tasks.aws.errors import aws_call, create_or_adopt
from tasks.aws.identity import Identity
from tasks.aws.updates import wait_update

COMPONENT = "eks"
CLUSTER_ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
MODE = "API"
# An adopted cluster may still be in CONFIG_MAP mode; EKS moves it one way only.
MODE_STEPS = {"CONFIG_MAP": "API_AND_CONFIG_MAP", "API_AND_CONFIG_MAP": "API"}


def authentication_mode(
    aws: AwsClients, cluster: dict[str, Any], pace: Pace, changes: list[str]
) -> None:
    """Move the cluster to the API mode, a step (an update, waited for) at a time."""
    mode = cluster.get("accessConfig", {}).get("authenticationMode", "CONFIG_MAP")
    while mode != MODE:
        mode = MODE_STEPS[mode]
        with aws_call("eks:UpdateClusterConfig"):
            update = aws("eks").update_cluster_config(
                name=cluster["name"], accessConfig={"authenticationMode": mode}
            )["update"]
        wait_update(aws, cluster["name"], update, pace)
        changes.append(f"authentication mode {mode}")


def ensure_access_entries(
    spec: PlatformSpec, aws: AwsClients, cluster: str, admins: list[str]
) -> list[str]:
    """Converge the admin principals' entries and policies; returns what changed."""
    eks, identity = aws("eks"), Identity.of(spec)
    wanted = set(admins)
    with aws_call("eks:ListAccessEntries"):
        pages = eks.get_paginator("list_access_entries").paginate(clusterName=cluster)
        present = {arn for page in pages for arn in page["accessEntries"]}
    changes = []
    for principal in sorted(wanted - present):
        create_or_adopt(
            "eks:CreateAccessEntry",
            lambda principal=principal: eks.create_access_entry(
                clusterName=cluster,
                principalArn=principal,
                type="STANDARD",
                tags=identity.tags(COMPONENT),
            ),
            "ResourceInUseException",
        )
        changes.append(f"access entry {principal}")
    for principal in sorted(wanted):
        if _associate_admin(aws, cluster, principal):
            changes.append(f"cluster admin for {principal}")
    for principal in sorted(present - wanted):
        with aws_call("eks:DescribeAccessEntry"):
            entry = eks.describe_access_entry(clusterName=cluster, principalArn=principal)
        if identity.owns(entry["accessEntry"].get("tags")):
            with aws_call("eks:DeleteAccessEntry"):
                eks.delete_access_entry(clusterName=cluster, principalArn=principal)
            changes.append(f"removed access entry {principal} (no longer in the spec)")
    return changes


def _associate_admin(aws: AwsClients, cluster: str, principal: str) -> bool:
    """Give the principal cluster admin unless it has it; True when it was given now."""
    eks = aws("eks")
    with aws_call("eks:ListAssociatedAccessPolicies"):
        pages = eks.get_paginator("list_associated_access_policies").paginate(
            clusterName=cluster, principalArn=principal
        )
        policies = [p for page in pages for p in page["associatedAccessPolicies"]]
    if any(
        p["policyArn"] == CLUSTER_ADMIN and p["accessScope"]["type"] == "cluster" for p in policies
    ):
        return False
    with aws_call("eks:AssociateAccessPolicy"):
        eks.associate_access_policy(
            clusterName=cluster,
            principalArn=principal,
            policyArn=CLUSTER_ADMIN,
            accessScope={"type": "cluster"},
        )
    return True
