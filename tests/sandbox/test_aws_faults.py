"""Fault injection: throttling and 503s in each protocol's format, failed clusters, sick add-ons."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError
from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

from sandbox.aws.server import LocalAws
from sandbox.cluster import AddonInfo
from sandbox.settings import Fault, SandboxSettings

pytestmark = pytest.mark.sandbox

REGION = "eu-west-1"
NO_RETRIES = Config(retries={"total_max_attempts": 1})
STANDARD_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 3})
POLL = {"Delay": 0.05, "MaxAttempts": 20}


@pytest.fixture(scope="module")
def aws():
    with LocalAws(SandboxSettings()) as local:
        yield local


@pytest.fixture(autouse=True)
def no_faults_left(aws):
    yield
    aws.settings.faults.clear()


def client(aws, service: str, config: Config = NO_RETRIES):
    return boto3.client(
        service,
        endpoint_url=aws.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def failure(call, **kwargs) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def make_cluster(eks, name: str) -> dict:
    return eks.create_cluster(
        name=name,
        version="1.33",
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-a"]},
    )["cluster"]


def test_throttling_twice_then_success_without_retries(aws):
    eks = client(aws, "eks")
    make_cluster(eks, "throttled")
    aws.settings.faults.add(Fault("aws-throttle", "eks:DescribeCluster", count=2))
    assert failure(eks.describe_cluster, name="throttled") == ("ThrottlingException", 429)
    eks.list_clusters()  # other operations are not targeted
    assert failure(eks.describe_cluster, name="throttled") == ("ThrottlingException", 429)
    assert eks.describe_cluster(name="throttled")["cluster"]["name"] == "throttled"


def test_standard_retry_mode_rides_out_throttling(aws):
    eks = client(aws, "eks", STANDARD_RETRIES)
    make_cluster(eks, "retried")
    before = aws.calls().get("eks:DescribeCluster", 0)
    aws.settings.faults.add(Fault("aws-throttle", "eks:DescribeCluster", count=2))
    answer = eks.describe_cluster(name="retried")
    assert answer["cluster"]["name"] == "retried"
    assert answer["ResponseMetadata"]["RetryAttempts"] == 2
    assert aws.calls()["eks:DescribeCluster"] - before == 3
    assert aws.settings.faults.list() == []  # the count is used up


@pytest.mark.parametrize(
    ("service", "operation", "code", "status"),
    [
        ("ec2", "describe_vpcs", "RequestLimitExceeded", 503),
        ("iam", "list_roles", "Throttling", 400),
        ("sts", "get_caller_identity", "Throttling", 400),
        ("logs", "describe_log_groups", "ThrottlingException", 400),
        ("acm", "list_certificates", "ThrottlingException", 400),
        ("secretsmanager", "list_secrets", "ThrottlingException", 400),
        ("s3", "list_buckets", "SlowDown", 503),
        ("route53", "list_hosted_zones", "Throttling", 400),
        ("eks", "list_clusters", "ThrottlingException", 429),
    ],
)
def test_throttling_looks_like_each_service_and_botocore_classifies_it(
    aws, service, operation, code, status
):
    aws.settings.faults.add(Fault("aws-throttle", "*", count=1))
    api = client(aws, service)
    with pytest.raises(ClientError) as caught:
        getattr(api, operation)()
    response = caught.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == (
        code,
        status,
    )
    assert ThrottledRetryableChecker().is_retryable(RetryContext(1, parsed_response=response))
    getattr(api, operation)()  # the fault is used up


@pytest.mark.parametrize(
    ("service", "operation", "target"),
    [
        ("eks", "list_clusters", "eks:ListClusters"),
        ("ec2", "describe_vpcs", "ec2:DescribeVpcs"),
        ("iam", "list_roles", "iam:ListRoles"),
        ("logs", "describe_log_groups", "logs:DescribeLogGroups"),
        ("s3", "list_buckets", "s3:ListBuckets"),
        ("route53", "list_hosted_zones", "route53:ListHostedZones"),
    ],
)
def test_aws_error_is_a_503_service_unavailable(aws, service, operation, target):
    aws.settings.faults.add(Fault("aws-error", target, count=1))
    api = client(aws, service)
    assert failure(getattr(api, operation)) == ("ServiceUnavailable", 503)
    getattr(api, operation)()


def test_aws_error_targets_patterns_and_retries_recover(aws):
    eks = client(aws, "eks")
    aws.settings.faults.add(Fault("aws-error", "eks:Create*"))
    assert failure(make_cluster, eks=eks, name="unlucky") == ("ServiceUnavailable", 503)
    assert "unlucky" not in eks.list_clusters()["clusters"]
    aws.settings.faults.clear("aws-error")
    make_cluster(eks, "unlucky")


def test_eks_create_fails_makes_the_cluster_failed_for_good(aws):
    eks = client(aws, "eks")
    aws.settings.faults.add(Fault("eks-create-fails", "broken-*", count=1))
    make_cluster(eks, "broken-1")
    with pytest.raises(WaiterError):
        eks.get_waiter("cluster_active").wait(name="broken-1", WaiterConfig=POLL)
    assert eks.describe_cluster(name="broken-1")["cluster"]["status"] == "FAILED"
    assert eks.describe_cluster(name="broken-1")["cluster"]["status"] == "FAILED"
    make_cluster(eks, "broken-2")  # the count is used up: the next one comes up
    eks.get_waiter("cluster_active").wait(name="broken-2", WaiterConfig=POLL)


def test_addon_degraded_hits_the_named_addon_even_with_nodes(aws):
    eks = client(aws, "eks")
    make_cluster(eks, "sick")
    eks.create_nodegroup(
        clusterName="sick",
        nodegroupName="system",
        nodeRole="arn:aws:iam::123456789012:role/node",
        subnets=["subnet-a"],
        scalingConfig={"minSize": 1, "maxSize": 3, "desiredSize": 2},
    )
    aws.settings.faults.add(Fault("addon-degraded", "vpc-cni"))
    eks.create_addon(clusterName="sick", addonName="vpc-cni")
    eks.create_addon(clusterName="sick", addonName="kube-proxy")
    sick = eks.describe_addon(clusterName="sick", addonName="vpc-cni")["addon"]
    assert sick["status"] == "DEGRADED"
    assert sick["health"]["issues"][0]["code"] == "InsufficientNumberOfReplicas"
    with pytest.raises(WaiterError):
        eks.get_waiter("addon_active").wait(
            clusterName="sick", addonName="vpc-cni", WaiterConfig=POLL
        )
    assert eks.describe_addon(clusterName="sick", addonName="kube-proxy")["addon"]["status"] == (
        "ACTIVE"
    )
    addons = aws.cluster_source().addons()
    assert AddonInfo("sick", "vpc-cni", "DEGRADED") in addons
    assert AddonInfo("sick", "kube-proxy", "ACTIVE") in addons

    aws.settings.faults.clear("addon-degraded")  # an update without the fault heals it
    eks.update_addon(clusterName="sick", addonName="vpc-cni", resolveConflicts="OVERWRITE")
    assert eks.describe_addon(clusterName="sick", addonName="vpc-cni")["addon"]["status"] == (
        "ACTIVE"
    )


@pytest.mark.parametrize(
    ("service", "operation", "target", "code"),
    [
        ("ec2", "describe_vpcs", "ec2:DescribeVpcs", "UnauthorizedOperation"),
        ("iam", "list_roles", "iam:ListRoles", "AccessDenied"),
        ("eks", "list_clusters", "eks:ListClusters", "AccessDeniedException"),
    ],
)
def test_aws_denied_is_a_403_each_service_names_its_way(aws, service, operation, target, code):
    aws.settings.faults.add(Fault("aws-denied", target, 1))
    api = client(aws, service, STANDARD_RETRIES)  # retries must not hide a permanent error
    assert failure(getattr(api, operation)) == (code, 403)
    getattr(api, operation)()  # the count is used up: the next call goes through
