"""``platformctl plan --check-account`` against a running local AWS: the principal, each
quota's limit (Service Quotas, served by the sandbox with AWS's defaults), what is in use
and what of it is the platform's own, read without changing anything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blueprint.loader import load_spec, load_spec_data, validate_spec
from blueprint.quotas import ON_DEMAND_STANDARD, SPOT_STANDARD, VPCS
from sandbox.aws.moto_app import ACCOUNT_ID
from tasks.aws.account import AccountCheck, check_account
from tasks.aws.clients import AwsClients
from tasks.aws.identity import Identity
from tests.call_log import CallLog
from tests.sandbox.foundation_sandbox import Sandbox, new_clients

pytestmark = pytest.mark.sandbox

SPEC = load_spec("sandbox")


@pytest.fixture
def aws(sandbox: Sandbox) -> Iterator[AwsClients]:
    yield new_clients(sandbox)
    sandbox.settings.quotas.clear()


def by_key(result: AccountCheck) -> dict[str, object]:
    return {c.need.quota.key: c for c in result.quotas}


def test_a_fresh_account_holds_the_sandbox_spec_and_is_only_read(aws: AwsClients):
    log = CallLog()
    aws.register("before-call", log)
    result = check_account(SPEC, aws)

    assert result.principal.account == ACCOUNT_ID
    assert f"::{ACCOUNT_ID}:" in result.principal.arn  # moto: arn:aws:sts::ACCOUNT:user/moto
    assert result.short == []
    assert {c.status for c in result.quotas} == {"OK"}, [c.to_json() for c in result.quotas]
    vpcs = by_key(result)[VPCS.key]
    assert (vpcs.in_use, vpcs.ours, vpcs.limit) == (1, 0, 5)  # the region's default VPC
    assert by_key(result)[ON_DEMAND_STANDARD.key].limit == 32
    assert log.mutating() == []
    assert {"GetCallerIdentity", "GetServiceQuota", "DescribeInstances"} <= set(log.operations)


def test_what_the_platform_owns_is_in_use_but_not_needed_again(aws: AwsClients):
    ec2 = aws("ec2")
    tags = [{"ResourceType": "vpc", "Tags": Identity.of(SPEC).tag_list("vpc")}]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=tags)["Vpc"]["VpcId"]
    try:
        vpcs = by_key(check_account(SPEC, aws))[VPCS.key]
    finally:
        ec2.delete_vpc(VpcId=vpc)
    assert (vpcs.in_use, vpcs.ours, vpcs.after_run) == (2, 1, 2)


def test_a_quota_too_small_is_short_and_one_too_small_for_max_size_is_said(
    sandbox: Sandbox, aws: AwsClients
):
    sandbox.settings.quotas.update({VPCS.key: 1, ON_DEMAND_STANDARD.key: 4, SPOT_STANDARD.key: 8})
    result = check_account(SPEC, aws)
    checks = by_key(result)
    assert [c.need.quota for c in result.short] == [VPCS, ON_DEMAND_STANDARD]
    assert checks[VPCS.key].after_run == 2  # the default VPC and the platform's
    assert checks[ON_DEMAND_STANDARD.key].after_run == 6  # system: 3 x 2 vCPU
    spot = checks[SPOT_STANDARD.key]  # workload: 3 x 2 vCPU, up to 8 x 2
    assert (spot.status, spot.after_run, spot.at_most) == ("short at max", 6, 16)


def test_a_quota_the_account_does_not_serve_is_unknown_not_short(aws: AwsClients):
    data = load_spec_data("sandbox")
    data["node_groups"]["system"]["instance_types"] = ["u-6tb1.metal"]
    result = check_account(validate_spec(data), aws)
    (memory,) = [c for c in result.quotas if c.need.quota.code == "L-43DA4232"]
    assert memory.status == "unknown" and memory.limit is None
    assert "NoSuchResource" in memory.note
    assert result.short == []
