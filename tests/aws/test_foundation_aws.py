"""The foundation flow in a real AWS account: the same flow and tasks the sandbox runs.

Skipped unless ``PLATFORM_TEST_AWS=1`` (see tests/conftest.py). To run it::

    PLATFORM_TEST_AWS=1 PLATFORM_TEST_ENV=production .venv/bin/pytest tests/aws -s

What it needs:

- AWS credentials in boto3's default chain (environment variables, ``AWS_PROFILE``, SSO,
  or an instance/task role) allowed to manage VPC/EC2, IAM (roles, OIDC providers), EKS,
  CloudWatch Logs and to call STS, in the region of the spec.
- ``PLATFORM_TEST_AWS=1``.
- ``PLATFORM_TEST_ENV`` (optional, default ``production``): the overlay in
  config/environments/ whose settings the run uses (region, zones, CIDRs, NAT layout,
  node groups, Kubernetes version). The test renames the platform and its cluster to
  ``ptest<random>-<environment>`` in a spec file of its own, so it never touches, let alone
  deletes, a platform of that environment that already exists in the account.
- ``PLATFORM_TEST_API_CIDRS`` (optional): the test runs outside the VPC it creates, so it
  builds the private-only cluster the documented way: public access for
  ``eks.build_access_cidrs`` alone (the private endpoint stays on); comma-separated CIDRs,
  e.g. your address/32. Unset, the test allows 0.0.0.0/0 (requests still need AWS
  authentication).
- Prefect: the run goes to ``PREFECT_API_URL`` when it is set (watch it in your UI); the
  flow then acts on that server's ``platform-target/<environment>`` block, and so does the
  test. Otherwise it goes to a temporary local server, where the test saves a target for
  the spec's region with credentials from the default chain.

Cost warning: this creates a real EKS control plane, NAT gateways with Elastic IPs and
EC2 nodes (on-demand and spot). Expect roughly an hour (cluster 10-15 min, node groups
5-10 min, teardown 15-20 min) and a few US dollars per run. Everything is deleted in a
``finally`` block with the delete_* functions in reverse order (add-ons, node groups,
cluster, roles, network); the test fails and prints what is left if a step did not
finish, and ``platformctl inventory --env <env> --spec <printed file>`` finds the rest by
its tags.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.testing.utilities import prefect_test_harness

from blocks.target import PlatformTarget, aws_target, load_target
from blueprint.loader import load_spec
from blueprint.pace import Pace
from blueprint.spec import PlatformSpec
from flows.foundation import foundation
from tasks.aws.addons import delete_addons
from tasks.aws.clients import AwsClients, aws_clients
from tasks.aws.eks import delete_cluster, describe_cluster
from tasks.aws.errors import TransientAwsError
from tasks.aws.iam import delete_roles
from tasks.aws.inventory import aws_inventory
from tasks.aws.nodegroups import delete_node_groups
from tasks.aws.vpc import delete_network
from tests.call_log import CallLog

pytestmark = pytest.mark.aws

ENVIRONMENT = os.environ.get("PLATFORM_TEST_ENV", "production")
CHECKS = ["nodes_ready", "kube_system_running_pods", "cluster_info", "eks_status"]
# A step that meets a transient error (e.g. DependencyViolation while the network
# interfaces EKS made are released) is tried again until this budget is spent.
TEARDOWN_STEP_BUDGET = 20 * 60
TEARDOWN_RETRY_SECONDS = 30


@pytest.fixture(scope="module")
def prefect_api() -> Iterator[bool]:
    """True on a temporary server of the test's own, False on the user's server."""
    if os.environ.get("PREFECT_API_URL"):
        yield False
        return
    with prefect_test_harness():
        yield True


def foundation_arguments(spec_file: Path) -> dict[str, Any]:
    """The flow's parameters for this test's run (bound to its signature in
    tests/unit/test_aws_test_binding.py, so that they cannot drift from the flow)."""
    return {"environment": ENVIRONMENT, "spec_file": str(spec_file)}


async def flow_target(own_server: bool, spec: PlatformSpec) -> PlatformTarget:
    """The target the flow will load: the user's block, or one saved on our own server."""
    if own_server:
        await aws_target(ENVIRONMENT, spec.platform.region).save(ENVIRONMENT, overwrite=True)
    return await load_target(ENVIRONMENT)


@pytest.fixture
def test_spec(tmp_path: Path) -> tuple[Path, PlatformSpec]:
    """A spec file over the chosen overlay: a platform of its own, reachable from here."""
    environment = load_spec(ENVIRONMENT).platform.environment
    name = f"ptest{uuid.uuid4().hex[:6]}"
    cidrs = [c.strip() for c in os.environ.get("PLATFORM_TEST_API_CIDRS", "").split(",")]
    eks: dict[str, Any] = {
        "cluster_name": f"{name}-{environment}",
        "endpoint_public_access": False,
        "build_access_cidrs": [c for c in cidrs if c] or ["0.0.0.0/0"],
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"platform": {"name": name}, "eks": eks}))
    print(f"spec file of this run: {path}\n{path.read_text()}")
    return path, load_spec(ENVIRONMENT, path)


def tear_down(spec: PlatformSpec, aws: AwsClients, pace: Pace) -> list[str]:
    """Delete what the platform owns, newest first; returns the steps that did not finish."""
    issuer = None
    with contextlib.suppress(Exception):  # no cluster (or no access): nothing to look up
        issuer = (describe_cluster(aws, spec.eks.cluster_name) or {}).get("identity", {})
        issuer = issuer.get("oidc", {}).get("issuer")
    steps: list[tuple[str, Callable[[], list[str]]]] = [
        ("add-ons", lambda: delete_addons(spec, aws, pace)),
        ("node groups", lambda: delete_node_groups(spec, aws, pace)),
        ("cluster", lambda: delete_cluster(spec, aws, pace)),
        ("roles", lambda: delete_roles(spec, aws, issuer)),
        ("network", lambda: delete_network(spec, aws, pace)),
    ]
    problems = []
    for what, step in steps:
        deadline = time.monotonic() + TEARDOWN_STEP_BUDGET
        while True:
            try:
                print(f"deleted ({what}): {step()}")
                break
            except TransientAwsError as exc:
                if time.monotonic() > deadline:
                    problems.append(f"{what}: {exc}")
                    break
                time.sleep(TEARDOWN_RETRY_SECONDS)
            except Exception as exc:
                problems.append(f"{what}: {type(exc).__name__}: {exc}")
                break
    return problems


def test_foundation_converges_in_aws_and_a_rerun_changes_nothing(
    prefect_api: bool, test_spec: tuple[Path, PlatformSpec]
):
    spec_file, spec = test_spec
    target = asyncio.run(flow_target(prefect_api, spec))
    aws = aws_clients(target.aws_credentials, target.region)  # what the flow's tasks use

    def run() -> Any:
        return asyncio.run(foundation(**foundation_arguments(spec_file), return_state=True))

    try:
        state = run()
        assert state.is_completed(), state.message
        checks = state.result()["checks"]
        assert [c["name"] for c in checks] == CHECKS
        assert all(c["passed"] for c in checks), checks
        assert all(c["value"] is not None for c in checks)

        before = aws_inventory(spec, aws)
        assert {"vpc", "eks-cluster", "eks-nodegroup", "eks-addon", "iam-role"} <= {
            row["type"] for row in before
        }
        log = CallLog()
        aws.register("before-call", log)
        again = run()
        assert again.is_completed(), again.message
        assert log.operations, "the hook saw no AWS call"
        assert log.mutating() == []
        assert aws_inventory(spec, aws) == before
    finally:
        problems = tear_down(spec, aws, Pace())
        try:
            leftovers = aws_inventory(spec, aws)
        except Exception as exc:  # keep a failure of the run itself visible
            leftovers = [{"type": "unknown", "id": "", "name": f"inventory failed: {exc}"}]
        if problems or leftovers:
            print(f"teardown problems: {problems}\nleft in the account: {leftovers}")
    assert problems == []
    assert leftovers == []
