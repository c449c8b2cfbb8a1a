"""Operation identification on the requests botocore really sends, and error wire formats."""

from __future__ import annotations

from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.parsers import create_parser
from werkzeug.test import EnvironBuilder

from sandbox.aws.errors import AwsError, error_response, throttling, unavailable
from sandbox.aws.moto_eks import signed_headers
from sandbox.aws.operations import Operation, OperationIdentifier

pytestmark = pytest.mark.sandbox

REGION = "eu-west-1"
ARN = "arn:aws:eks:eu-west-1:123456789012:cluster/prod"


class Captured(Exception):
    def __init__(self, request):
        super().__init__("request captured")
        self.request = request


def client(service: str):
    api = boto3.client(
        service,
        endpoint_url="http://127.0.0.1:9",  # never reached: requests are captured before sending
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )

    def capture(request, **_):
        raise Captured(request)

    api.meta.events.register("before-send", capture)
    return api


def environ_of(url: str, method: str, headers: dict, body) -> dict:
    """The WSGI environ werkzeug's server would build for this request."""
    parts = urlsplit(url)
    if hasattr(body, "read"):
        body = body.read()
    environ = EnvironBuilder(
        path=parts.path,
        query_string=parts.query,
        method=method,
        headers={k: v.decode() if isinstance(v, bytes) else v for k, v in headers.items()},
        data=body or b"",
    ).get_environ()
    environ["RAW_URI"] = parts.path + (f"?{parts.query}" if parts.query else "")
    return environ


def identify(service: str, operation: str, **params) -> Operation | None:
    with pytest.raises(Captured) as caught:
        getattr(client(service), operation)(**params)
    request = caught.value.request
    environ = environ_of(request.url, request.method, dict(request.headers), request.body)
    return OperationIdentifier().identify(environ)


CASES = [
    # query protocol
    ("iam", "create_role", {"RoleName": "r", "AssumeRolePolicyDocument": "{}"}, "iam:CreateRole"),
    ("sts", "get_caller_identity", {}, "sts:GetCallerIdentity"),
    ("elbv2", "describe_target_groups", {}, "elasticloadbalancing:DescribeTargetGroups"),
    (
        "elb",
        "describe_load_balancer_policies",
        {},
        "elasticloadbalancing:DescribeLoadBalancerPolicies",
    ),
    # EC2's query dialect
    ("ec2", "create_vpc", {"CidrBlock": "10.0.0.0/16"}, "ec2:CreateVpc"),
    (
        "ec2",
        "describe_subnets",
        {"Filters": [{"Name": "vpc-id", "Values": ["v"]}]},
        "ec2:DescribeSubnets",
    ),
    # JSON protocol
    (
        "logs",
        "put_retention_policy",
        {"logGroupName": "/aws/eks/prod/cluster", "retentionInDays": 7},
        "logs:PutRetentionPolicy",
    ),
    ("acm", "request_certificate", {"DomainName": "*.example.com"}, "acm:RequestCertificate"),
    (
        "secretsmanager",
        "create_secret",
        {"Name": "db", "SecretString": "x"},
        "secretsmanager:CreateSecret",
    ),
    # REST-JSON
    ("eks", "list_clusters", {}, "eks:ListClusters"),
    ("eks", "describe_cluster", {"name": "prod"}, "eks:DescribeCluster"),
    ("eks", "list_nodegroups", {"clusterName": "prod"}, "eks:ListNodegroups"),
    ("eks", "describe_addon_versions", {"kubernetesVersion": "1.33"}, "eks:DescribeAddonVersions"),
    ("eks", "describe_cluster_versions", {}, "eks:DescribeClusterVersions"),
    ("eks", "tag_resource", {"resourceArn": ARN, "tags": {"a": "b"}}, "eks:TagResource"),
    # REST-XML
    ("s3", "list_buckets", {}, "s3:ListBuckets"),
    ("s3", "create_bucket", {"Bucket": "logs"}, "s3:CreateBucket"),
    ("s3", "head_bucket", {"Bucket": "logs"}, "s3:HeadBucket"),
    ("s3", "list_objects", {"Bucket": "logs"}, "s3:ListObjects"),
    ("s3", "list_objects_v2", {"Bucket": "logs"}, "s3:ListObjectsV2"),
    (
        "s3",
        "put_bucket_lifecycle_configuration",
        {"Bucket": "logs", "LifecycleConfiguration": {"Rules": []}},
        "s3:PutBucketLifecycleConfiguration",
    ),
    (
        "s3",
        "get_bucket_lifecycle_configuration",
        {"Bucket": "logs"},
        "s3:GetBucketLifecycleConfiguration",
    ),
    (
        "s3",
        "put_bucket_versioning",
        {"Bucket": "logs", "VersioningConfiguration": {"Status": "Enabled"}},
        "s3:PutBucketVersioning",
    ),
    ("s3", "get_object_tagging", {"Bucket": "logs", "Key": "a/b.txt"}, "s3:GetObjectTagging"),
    (
        "route53",
        "create_hosted_zone",
        {"Name": "example.com", "CallerReference": "1"},
        "route53:CreateHostedZone",
    ),
    (
        "route53",
        "list_resource_record_sets",
        {"HostedZoneId": "Z1"},
        "route53:ListResourceRecordSets",
    ),
]


@pytest.mark.parametrize(("service", "operation", "params", "expected"), CASES)
def test_identifies_the_operation_botocore_called(service, operation, params, expected):
    found = identify(service, operation, **params)
    assert found is not None
    assert str(found) == expected
    assert found.region == REGION


def test_protocols_and_uri_labels():
    addon = identify(
        "eks", "update_addon", clusterName="prod", addonName="coredns", addonVersion="v1"
    )
    assert addon == Operation(
        "eks", "UpdateAddon", "rest-json", REGION, {"name": "prod", "addonName": "coredns"}
    )
    tagged = identify("eks", "untag_resource", resourceArn=ARN, tagKeys=["a"])
    assert tagged.uri_params == {"resourceArn": ARN}  # percent-encoded slashes stay one label
    obj = identify("s3", "put_object", Bucket="logs", Key="2025/06/app.log", Body=b"hello")
    assert (obj.name, obj.uri_params) == ("PutObject", {"Bucket": "logs", "Key": "2025/06/app.log"})
    # S3 operations that share a method and URI differ in required headers and parameters
    copy = identify("s3", "copy_object", Bucket="logs", Key="b.log", CopySource="logs/a.log")
    assert copy.name == "CopyObject"
    part = identify(
        "s3", "upload_part", Bucket="logs", Key="b.log", PartNumber=1, UploadId="u", Body=b"x"
    )
    assert part.name == "UploadPart"
    assert identify("s3", "list_parts", Bucket="logs", Key="b.log", UploadId="u").name == (
        "ListParts"
    )
    assert identify("s3", "get_object", Bucket="logs", Key="b.log").name == "GetObject"
    assert identify("s3", "delete_object", Bucket="logs", Key="b.log").name == "DeleteObject"
    assert identify("ec2", "describe_vpcs").protocol == "ec2"
    assert identify("iam", "list_roles").protocol == "query"
    assert identify("logs", "describe_log_groups").protocol == "json"
    assert identify("route53", "list_hosted_zones").protocol == "rest-xml"
    metrics = identify(
        "cloudwatch", "put_metric_data", Namespace="n", MetricData=[{"MetricName": "m"}]
    )
    assert str(metrics) == "monitoring:PutMetricData"


def test_s3_presigned_and_virtual_hosted_requests():
    url = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4"),
    ).generate_presigned_url("get_object", Params={"Bucket": "logs", "Key": "a.txt"})
    presigned = OperationIdentifier().identify(environ_of(url, "GET", {}, b""))
    assert str(presigned) == "s3:GetObject"

    virtual = environ_of("http://logs.localhost:4566/?lifecycle", "PUT", {}, b"<x/>")
    virtual.update(
        HTTP_HOST="logs.localhost:4566",
        HTTP_AUTHORIZATION=signed_headers(REGION, "s3")["Authorization"],
    )
    found = OperationIdentifier().identify(virtual)
    assert str(found) == "s3:PutBucketLifecycleConfiguration"
    assert found.uri_params == {"Bucket": "logs"}


def test_unsigned_requests_are_not_identified():
    environ = environ_of("http://127.0.0.1:9/clusters", "GET", {}, b"")
    assert OperationIdentifier().identify(environ) is None


@pytest.mark.parametrize(
    ("protocol", "service", "error", "code"),
    [
        ("query", "iam", throttling("query", "iam"), "Throttling"),
        ("ec2", "ec2", throttling("ec2", "ec2"), "RequestLimitExceeded"),
        ("json", "logs", throttling("json", "logs"), "ThrottlingException"),
        ("rest-json", "eks", throttling("rest-json", "eks"), "ThrottlingException"),
        ("rest-xml", "s3", throttling("rest-xml", "s3"), "SlowDown"),
        ("rest-xml", "route53", throttling("rest-xml", "route53"), "Throttling"),
        ("smithy-rpc-v2-cbor", "monitoring", throttling("x", "monitoring"), "ThrottlingException"),
        ("rest-json", "eks", unavailable(), "ServiceUnavailable"),
        ("query", "iam", AwsError(400, "NoSuchEntity", "Role <r> & co"), "NoSuchEntity"),
    ],
)
def test_botocore_parses_each_error_format(protocol, service, error, code):
    response = error_response(protocol, service, error)
    parsed = create_parser(protocol).parse(
        {
            "status_code": response.status_code,
            "headers": {k.lower(): v for k, v in response.headers.items()},
            "body": response.get_data(),
        },
        None,
    )
    assert parsed["Error"]["Code"] == code
    assert parsed["Error"]["Message"] == error.message
