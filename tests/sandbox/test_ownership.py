"""What the platform adopts and deletes: only what carries its ownership tags; and how a
bucket it owns is emptied.

A role, a cluster and a bucket with the platform's names but not its tags (made by someone
else in the same account) stop a converge and a teardown with "exists, not ours", and
nothing about them changes. Bucket names are global: a name held by another account (the
sandbox's ``s3-name-taken``) is named as such, and the platform's own names carry the
account ID so that two installations never meet.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from blueprint.spec import bucket_name
from sandbox.aws.moto_app import ACCOUNT_ID
from sandbox.settings import Fault
from tasks.aws import s3 as s3_steps
from tasks.aws.addons import delete_addons
from tasks.aws.clients import AwsClients
from tasks.aws.eks import delete_cluster, ensure_cluster
from tasks.aws.errors import PermanentAwsError
from tasks.aws.iam import delete_roles, ensure_roles, role_names
from tasks.aws.identity import NotOurs, tag_dict
from tasks.aws.s3 import delete_bucket, ensure_bucket
from tasks.aws.vpc import ensure_network
from tests.call_log import CallLog
from tests.sandbox.foundation_sandbox import FAST, Sandbox, new_clients, spec_named

pytestmark = pytest.mark.sandbox

STRANGER_TAGS = [{"Key": "team", "Value": "data"}]
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture
def aws(sandbox: Sandbox) -> Iterator[AwsClients]:
    yield new_clients(sandbox)
    sandbox.settings.faults.clear()


def test_a_role_of_the_platforms_name_but_not_its_tags_is_left_alone(aws: AwsClients):
    spec = spec_named("strangerole")
    name = role_names(spec)["node"]
    iam = aws("iam")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST), Tags=STRANGER_TAGS)
    iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")

    with pytest.raises(NotOurs, match=f"IAM role {name} exists, not ours"):
        ensure_roles(spec, aws)
    with pytest.raises(NotOurs, match=f"IAM role {name} exists, not ours"):
        delete_roles(spec, aws)

    role = iam.get_role(RoleName=name)["Role"]
    assert role["AssumeRolePolicyDocument"] == TRUST
    assert role["Tags"] == STRANGER_TAGS
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["ReadOnlyAccess"]
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == []


def test_a_cluster_of_the_platforms_name_but_not_its_tags_is_left_alone(aws: AwsClients):
    spec = spec_named("strangecluster")
    network, roles = ensure_network(spec, aws), ensure_roles(spec, aws)
    eks = aws("eks")
    eks.create_cluster(
        name=spec.eks.cluster_name,
        roleArn=roles.cluster_role_arn,
        resourcesVpcConfig={"subnetIds": list(network.private_subnets.values())},
        tags={"team": "data"},
    )

    with pytest.raises(NotOurs, match=f"EKS cluster {spec.eks.cluster_name} exists, not ours"):
        ensure_cluster(spec, aws, network, roles, FAST)
    for delete in (delete_addons, delete_cluster):
        with pytest.raises(NotOurs):
            delete(spec, aws, FAST)

    cluster = eks.describe_cluster(name=spec.eks.cluster_name)["cluster"]
    assert cluster["tags"] == {"team": "data"}
    assert cluster["status"] != "DELETING"


def test_a_bucket_of_the_platforms_name_but_not_its_tags_is_left_alone(aws: AwsClients):
    spec = spec_named("strangebucket")
    name = bucket_name(spec, "loki", ACCOUNT_ID)
    s3 = aws("s3")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="theirs.txt", Body=b"data")

    with pytest.raises(NotOurs, match=f"S3 bucket {name} exists, not ours"):
        ensure_bucket(spec, aws, "loki")
    with pytest.raises(NotOurs, match=f"S3 bucket {name} exists, not ours"):
        delete_bucket(spec, aws, "loki")

    assert s3.get_object(Bucket=name, Key="theirs.txt")["Body"].read() == b"data"
    assert s3.get_bucket_versioning(Bucket=name).get("Status") is None
    for read in (s3.get_bucket_lifecycle_configuration, s3.get_bucket_encryption):
        with pytest.raises(s3.exceptions.ClientError):
            read(Bucket=name)


def test_a_bucket_is_created_with_its_tags(sandbox: Sandbox, aws: AwsClients):
    spec = spec_named("tagged")
    bucket = ensure_bucket(spec, aws, "mimir")
    tags = tag_dict(aws("s3").get_bucket_tagging(Bucket=bucket.name)["TagSet"])
    assert tags["platform.io/name"] == "tagged"
    # The tags went with CreateBucket: no separate tagging call after it.
    assert bucket.changes[0] == f"created bucket {bucket.name}"
    assert "tags" not in bucket.changes
    assert delete_bucket(spec, aws, "mimir") == [f"bucket {bucket.name}"]


def test_a_new_bucket_of_a_deleted_ones_name_starts_without_its_tags(aws: AwsClients):
    s3 = aws("s3")
    s3.create_bucket(Bucket="reused-name")
    s3.put_bucket_tagging(Bucket="reused-name", Tagging={"TagSet": STRANGER_TAGS})
    s3.delete_bucket(Bucket="reused-name")
    s3.create_bucket(Bucket="reused-name")
    with pytest.raises(ClientError, match="NoSuchTagSet"):
        s3.get_bucket_tagging(Bucket="reused-name")
    s3.delete_bucket(Bucket="reused-name")


def test_bucket_names_carry_the_account_so_another_installation_never_meets_them(
    sandbox: Sandbox, aws: AwsClients
):
    spec = spec_named("everywhere")
    # Another account somewhere runs the same platform and environment names.
    sandbox.settings.faults.add(Fault("s3-name-taken", "everywhere-sandbox-mimir-blocks"))
    with pytest.raises(ClientError, match="HeadBucket operation: Forbidden"):
        aws("s3").head_bucket(Bucket="everywhere-sandbox-mimir-blocks")  # the old name: taken
    bucket = ensure_bucket(spec, aws, "mimir")
    assert bucket.name == f"everywhere-sandbox-mimir-blocks-{ACCOUNT_ID}"
    delete_bucket(spec, aws, "mimir")


def test_a_bucket_name_held_by_another_account_is_named_with_the_setting_to_change(
    sandbox: Sandbox, aws: AwsClients
):
    spec = spec_named("unlucky")
    name = bucket_name(spec, "mimir", ACCOUNT_ID)
    sandbox.settings.faults.add(Fault("s3-name-taken", name))
    with pytest.raises(PermanentAwsError, match="belongs to another AWS account") as raised:
        ensure_bucket(spec, aws, "mimir")
    assert "platform.bucket_namespace" in str(raised.value)
    with pytest.raises(PermanentAwsError, match="belongs to another AWS account"):
        delete_bucket(spec, aws, "mimir")


# ------------------------------------------------------------------- emptying a bucket


def test_a_bucket_of_many_versions_is_emptied_a_page_at_a_time(
    aws: AwsClients, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(s3_steps, "DELETE_PAGE", 50)  # pages of 50 instead of S3's 1000
    spec = spec_named("manyversions")
    name = ensure_bucket(spec, aws, "mimir").name
    s3 = aws("s3")
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for key in range(55):  # 110 versions: three pages
        for body in (b"1", b"2"):
            s3.put_object(Bucket=name, Key=f"chunk-{key}", Body=body)
    calls = CallLog()
    aws.register("before-call", calls)
    assert delete_bucket(spec, aws, "mimir") == [f"bucket {name}"]
    assert calls.operations.count("DeleteObjects") == 3
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=name)


def test_objects_s3_did_not_delete_fail_the_step_with_their_code(aws: AwsClients):
    spec = spec_named("locked")
    name = ensure_bucket(spec, aws, "loki").name
    aws("s3").put_object(Bucket=name, Key="held", Body=b"x")

    def refuse(parsed: dict, **_: object) -> None:  # as S3 answers for an object it keeps
        parsed["Errors"] = [{"Key": "held", "Code": "AccessDenied", "Message": "Access Denied"}]

    aws("s3").meta.events.register("after-call.s3.DeleteObjects", refuse)
    with pytest.raises(PermanentAwsError, match=r"1 of 1 objects in .* not deleted, e.g. held"):
        delete_bucket(spec, aws, "loki")
    aws("s3").meta.events.unregister("after-call.s3.DeleteObjects", refuse)
    assert delete_bucket(spec, aws, "loki") == [f"bucket {name}"]
