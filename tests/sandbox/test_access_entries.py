"""Access for more than the creator: EKS access entries, served and enforced by the sandbox.

The local AWS implements the access-entry API (moto has none) and the simulated Kubernetes
API, reached at a cluster's EKS endpoint with an EKS token, lets in only principals with an
entry, and only as far as its access policies go. The foundation gives the spec's admin
principals cluster admin, convergently, and leaves entries it did not make alone.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from prefect_aws import AwsClientParameters, AwsCredentials

from blueprint.errors import SpecError
from blueprint.spec import PlatformSpec
from sandbox.aws.moto_app import ACCOUNT_ID
from tasks.aws.access import CLUSTER_ADMIN, ensure_access_entries
from tasks.aws.clients import AwsClients
from tasks.aws.eks import ensure_cluster
from tasks.aws.iam import ensure_roles
from tasks.aws.identity import Identity
from tasks.aws.vpc import ensure_network
from tasks.kube import api_client
from tests.sandbox.foundation_sandbox import FAST, Sandbox, new_clients, spec_named

pytestmark = pytest.mark.sandbox

VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture(scope="module")
def made(sandbox: Sandbox) -> tuple[PlatformSpec, AwsClients]:
    """The foundation's cluster, as the creator made it (no admin principals yet)."""
    spec, aws = spec_named("access"), new_clients(sandbox)
    ensure_cluster(spec, aws, ensure_network(spec, aws), ensure_roles(spec, aws), FAST)
    return spec, aws


def as_role(sandbox: Sandbox, aws: AwsClients, name: str) -> tuple[str, AwsClients]:
    """A role (made if missing) and clients acting as it, as a work pool's IRSA role acts."""
    iam = aws("iam")
    try:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    except ClientError:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"][
            "Arn"
        ]
    keys = aws("sts").assume_role(RoleArn=arn, RoleSessionName="flow-run")["Credentials"]
    credentials = AwsCredentials(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        region_name=aws.region,
        aws_client_parameters=AwsClientParameters(endpoint_url=sandbox.aws.url),
    )
    return arn, AwsClients(credentials, aws.region)


def namespaces(aws: AwsClients, spec: PlatformSpec, namespace: str | None = None) -> int:
    """The status of listing namespaces (or a namespace's config maps) through EKS."""
    with api_client(aws, spec.eks.cluster_name, None) as api:
        try:
            if namespace:
                k8s.CoreV1Api(api).list_namespaced_config_map(namespace)
            else:
                k8s.CoreV1Api(api).list_namespace()
        except ApiException as refused:
            return refused.status
    return 200


# ------------------------------------------------------------------ the sandbox's API


def test_the_creator_and_the_runner_get_admin_entries_in_the_api_mode(made):
    spec, aws = made
    eks, name = aws("eks"), spec.eks.cluster_name
    cluster = eks.describe_cluster(name=name)["cluster"]
    assert cluster["accessConfig"]["authenticationMode"] == "API"
    runner = aws("iam").get_role(RoleName=f"{Identity.of(spec).prefix}-runner")["Role"]["Arn"]
    entries = eks.list_access_entries(clusterName=name)["accessEntries"]
    (creator,) = [arn for arn in entries if arn != runner]
    # ... and the in-cluster runner's role, whose flows act as it, is an admin too
    for principal in (creator, runner):
        policies = eks.list_associated_access_policies(clusterName=name, principalArn=principal)
        assert [p["policyArn"] for p in policies["associatedAccessPolicies"]] == [CLUSTER_ADMIN]
    assert namespaces(aws, spec) == 200


def test_access_entries_need_the_api_mode_which_only_moves_forward(sandbox: Sandbox):
    aws = new_clients(sandbox)
    eks = aws("eks")
    role = aws("iam").create_role(
        RoleName="config-map-cluster", AssumeRolePolicyDocument=json.dumps(TRUST)
    )["Role"]["Arn"]
    subnets = [s["SubnetId"] for s in aws("ec2").describe_subnets()["Subnets"][:2]]
    eks.create_cluster(name="config-map", roleArn=role, resourcesVpcConfig={"subnetIds": subnets})
    assert eks.describe_cluster(name="config-map")["cluster"]["accessConfig"] == {
        "authenticationMode": "CONFIG_MAP"  # the EKS API's default
    }
    with pytest.raises(ClientError) as refused:
        eks.list_access_entries(clusterName="config-map")
    assert refused.value.response["Error"]["Code"] == "InvalidRequestException"
    eks.update_cluster_config(name="config-map", accessConfig={"authenticationMode": "API"})
    with pytest.raises(ClientError) as backwards:
        eks.update_cluster_config(
            name="config-map", accessConfig={"authenticationMode": "CONFIG_MAP"}
        )
    assert backwards.value.response["Error"]["Code"] == "InvalidParameterException"
    assert eks.list_access_entries(clusterName="config-map")["accessEntries"] == []


def test_a_principal_without_an_entry_is_refused_and_policies_bound_the_rest(
    sandbox: Sandbox, made
):
    spec, aws = made
    eks, name = aws("eks"), spec.eks.cluster_name
    arn, role = as_role(sandbox, aws, "viewer")
    assert namespaces(role, spec) == 401  # no access entry: EKS does not know it
    eks.create_access_entry(clusterName=name, principalArn=arn)
    with pytest.raises(ClientError) as twice:
        eks.create_access_entry(clusterName=name, principalArn=arn)
    assert twice.value.response["Error"]["Code"] == "ResourceInUseException"
    assert namespaces(role, spec) == 403  # known, but no policy covers it
    eks.associate_access_policy(
        clusterName=name,
        principalArn=arn,
        policyArn=VIEW,
        accessScope={"type": "namespace", "namespaces": ["default"]},
    )
    assert namespaces(role, spec, "default") == 200
    assert namespaces(role, spec, "kube-system") == 403
    with api_client(role, name, None) as api, pytest.raises(ApiException) as write:
        k8s.CoreV1Api(api).create_namespaced_config_map("default", {"metadata": {"name": "x"}})
    assert write.value.status == 403  # view only
    eks.delete_access_entry(clusterName=name, principalArn=arn)
    assert namespaces(role, spec, "default") == 401


# ----------------------------------------------------------------- the foundation


def test_admin_principals_get_cluster_admin_and_lose_it_when_removed(sandbox: Sandbox, made):
    spec, aws = made
    eks, name = aws("eks"), spec.eks.cluster_name
    arn, worker = as_role(sandbox, aws, "work-pool")
    other, _ = as_role(sandbox, aws, "by-hand")
    eks.create_access_entry(clusterName=name, principalArn=other)  # not the platform's
    assert namespaces(worker, spec) == 401
    runner = aws("iam").get_role(RoleName=f"{Identity.of(spec).prefix}-runner")["Role"]["Arn"]
    changes = ensure_access_entries(spec, aws, name, [runner, arn])
    assert changes == [f"access entry {arn}", f"cluster admin for {arn}"]
    assert namespaces(worker, spec) == 200
    assert ensure_access_entries(spec, aws, name, [runner, arn]) == []  # converged
    assert ensure_access_entries(spec, aws, name, [runner]) == [
        f"removed access entry {arn} (no longer in the spec)"
    ]
    assert namespaces(worker, spec) == 401
    left = eks.list_access_entries(clusterName=name)["accessEntries"]
    assert other in left and arn not in left  # the hand-made entry stays


def test_an_admin_principal_must_be_an_iam_role_or_user_arn():
    with pytest.raises(SpecError) as refused:
        spec_named("bad", admin_principals=["arn:aws:sts::123456789012:assumed-role/r/s"])
    assert "eks.admin_principals" in str(refused.value)
