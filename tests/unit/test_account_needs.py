"""What a run needs from the AWS account: the quotas it draws on (pure, from the spec) and
the least-privilege policy of ``platformctl iam-policy`` (from the permission table)."""

from __future__ import annotations

import json
import re

import pytest

from blueprint.loader import load_spec, load_spec_data, validate_spec
from blueprint.quotas import (
    ELASTIC_IPS,
    ON_DEMAND_STANDARD,
    SPOT_STANDARD,
    family_class,
    quota_needs,
)
from blueprint.spec import bucket_name
from tasks.aws.iam import role_names
from tasks.aws.permissions import (
    ACCOUNT_PLACEHOLDER,
    OPERATIONS,
    UnknownOperation,
    actions_of,
    every_operation,
    grants_of,
    iam_policy,
    policy_actions,
)

ACCOUNT = "111122223333"
ACTION = re.compile(r"[a-z0-9-]+:[A-Z][A-Za-z0-9]+")


def needs_of(spec) -> dict[str, tuple[int, int]]:
    return {n.quota.key: (n.needed, n.at_most) for n in quota_needs(spec)}


def test_production_needs_a_nat_and_an_address_per_zone_and_vcpus_by_purchase_option():
    needs = needs_of(load_spec("production"))
    assert needs[ELASTIC_IPS.key] == (3, 3)  # nat_gateways: per-az over three zones
    assert needs["vpc/L-FE5A380F"] == (1, 1)  # NAT gateways per zone
    # system: 3 x t3.medium On-Demand (2 vCPU); workload: 4..12 x 2 vCPU Spot
    assert needs[ON_DEMAND_STANDARD.key] == (6, 6)
    assert needs[SPOT_STANDARD.key] == (8, 24)
    assert needs["vpc/L-F678F1CE"] == (1, 1) and needs["eks/L-1194D53C"] == (1, 1)
    assert needs["s3/L-DC2B2D3D"] == (2, 2)


def test_a_single_nat_needs_one_address_and_larger_types_more_vcpus():
    data = load_spec_data("sandbox")
    data["node_groups"]["system"]["instance_types"] = ["m5.xlarge"]
    needs = needs_of(validate_spec(data))
    assert needs[ELASTIC_IPS.key] == (1, 1)
    assert needs[ON_DEMAND_STANDARD.key] == (3 * 4, 3 * 4)


@pytest.mark.parametrize(
    ("instance_type", "expected"),
    [
        ("t3a.large", "standard"),
        ("m6g.large", "standard"),
        ("c5.xlarge", "standard"),
        ("u-6tb1.metal", "high-memory"),
        ("mac1.metal", "mac1"),
        ("inf2.xlarge", "inf2"),
    ],
)
def test_instance_families_map_to_their_vcpu_quota_class(instance_type: str, expected: str):
    assert family_class(instance_type) == expected


# -------------------------------------------------------------------- the IAM policy


@pytest.fixture(scope="module")
def policy() -> dict:
    return iam_policy(load_spec("production"), ACCOUNT)


def test_the_policy_is_a_valid_iam_policy_document(policy: dict):
    document = json.loads(json.dumps(policy))  # plain JSON all the way down
    assert document["Version"] == "2012-10-17"
    assert isinstance(document["Statement"], list) and document["Statement"]
    sids = [s["Sid"] for s in document["Statement"]]
    assert len(sids) == len(set(sids)) and all(re.fullmatch(r"[A-Za-z0-9]+", s) for s in sids)
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement["Action"] and all(ACTION.fullmatch(a) for a in statement["Action"])
        assert statement["Resource"] and all(
            r == "*" or r.startswith("arn:aws:") for r in statement["Resource"]
        )
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
    assert len(json.dumps(document, separators=(",", ":"))) < 10240  # a role's inline limit


def test_star_only_for_describe_and_list(policy: dict):
    for statement in policy["Statement"]:
        if "*" in statement["Resource"]:
            assert all(
                a.split(":")[1].startswith(("Describe", "List")) for a in statement["Action"]
            ), statement


def test_names_scope_roles_buckets_cluster_and_logs(policy: dict):
    spec = load_spec("production")
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    roles = by_sid["PlatformRoles"]["Resource"]
    assert f"arn:aws:iam::{ACCOUNT}:role/{role_names(spec)['cluster']}" in roles
    assert all(r.startswith(f"arn:aws:iam::{ACCOUNT}:role/platform-production-") for r in roles)
    assert by_sid["PlatformBuckets"]["Resource"] == [
        f"arn:aws:s3:::{bucket_name(spec, 'mimir', ACCOUNT)}",
        f"arn:aws:s3:::{bucket_name(spec, 'loki', ACCOUNT)}",
    ]
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion"} == set(
        by_sid["PlatformBucketObjects"]["Action"]
    )
    assert (
        f"arn:aws:eks:eu-west-1:{ACCOUNT}:cluster/platform-production"
        in (by_sid["EksCluster"]["Resource"])
    )
    assert by_sid["PassPlatformRolesToEks"]["Action"] == ["iam:PassRole"]
    assert by_sid["PassPlatformRolesToEks"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "eks.amazonaws.com"}
    }


def test_ec2_creates_need_the_platforms_tags_and_changes_need_its_resources(policy: dict):
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    owner = {"platform.io/name": "platform", "platform.io/environment": "production"}
    created = by_sid["Ec2CreateTagged"]
    assert created["Condition"]["StringEquals"] == {
        f"aws:RequestTag/{k}": v for k, v in owner.items()
    }
    assert "ec2:CreateVpc" in created["Action"]
    owned = by_sid["Ec2Owned"]
    assert owned["Condition"]["StringEquals"] == {
        f"aws:ResourceTag/{k}": v for k, v in owner.items()
    }
    assert {"ec2:DeleteVpc", "ec2:CreateSubnet"} <= set(owned["Action"])  # a subnet in our VPC
    assert "CreateVpc" in by_sid["Ec2TagOnCreate"]["Condition"]["StringEquals"]["ec2:CreateAction"]


def test_api_names_and_iam_actions_that_differ():
    assert actions_of(["s3:HeadBucket"]) == {"s3:ListBucket"}
    assert actions_of(["s3:ListObjectVersions"]) == {"s3:ListBucketVersions"}
    assert actions_of(["s3:DeleteObjects"]) == {"s3:DeleteObject", "s3:DeleteObjectVersion"}
    assert actions_of(["elbv2:DeleteLoadBalancer"]) == {"elasticloadbalancing:DeleteLoadBalancer"}
    assert actions_of(["sts:GetCallerIdentity"]) == set()
    assert "iam:PassRole" in actions_of(["eks:CreateCluster"])
    assert "iam:TagRole" in actions_of(["iam:CreateRole"])
    with pytest.raises(UnknownOperation):
        grants_of("ec2:RunInstances")


def test_the_table_names_botocore_operations():
    import botocore.session

    session = botocore.session.get_session()
    for service, operations in OPERATIONS.items():
        known = set(session.get_service_model(service).operation_names)
        assert set(operations) <= known, (service, set(operations) - known)


def test_a_policy_for_some_operations_names_only_their_actions():
    spec = load_spec("sandbox")
    chosen = ["s3:HeadBucket", "ec2:DescribeVpcs", "sts:GetCallerIdentity"]
    document = iam_policy(spec, ACCOUNT, chosen)
    assert policy_actions(document) == {"s3:ListBucket", "ec2:DescribeVpcs"}
    assert policy_actions(iam_policy(spec, ACCOUNT)) == actions_of(every_operation())


def test_without_an_account_the_placeholder_stands_in_every_arn():
    document = iam_policy(load_spec("production"), ACCOUNT_PLACEHOLDER)
    text = json.dumps(document)
    assert ACCOUNT not in text and f":{ACCOUNT_PLACEHOLDER}:" in text
    assert f"-{ACCOUNT_PLACEHOLDER}" in text  # bucket names end with the account
