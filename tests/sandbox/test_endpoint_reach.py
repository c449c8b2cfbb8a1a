"""Reaching a private cluster: the sandbox answers a runner outside the VPC only through
public access that lets its address in, and the product builds a private-only cluster
from outside through public access for ``eks.build_access_cidrs`` alone, then hands it to its
in-cluster worker."""

from __future__ import annotations

import ipaddress
import time

import pytest
from kubernetes import client as k8s
from urllib3.exceptions import MaxRetryError, ProtocolError

from blueprint.catalogue import load_catalogue
from blueprint.errors import SpecError
from blueprint.spec import work_pool
from sandbox.cluster import RUNNER_ADDRESS
from tasks.aws.eks import converge_endpoint, ensure_cluster, hand_over, owned_cluster
from tasks.aws.iam import ensure_roles
from tasks.aws.updates import wait_update
from tasks.aws.vpc import ensure_network
from tasks.inputs import check_reach, preflight
from tasks.kube import api_client
from tasks.runner import IN_CLUSTER, RUNNER_ENV
from tests.sandbox.foundation_sandbox import FAST, Sandbox, new_clients, spec_named

pytestmark = pytest.mark.sandbox

COMPONENTS = load_catalogue().components


def test_the_build_cidrs_include_the_sandbox_runner():
    spec = spec_named("reach")
    assert not spec.eks.endpoint_public_access  # the guide's private endpoint
    address = ipaddress.ip_address(RUNNER_ADDRESS)
    assert any(address in ipaddress.ip_network(c) for c in spec.eks.build_access_cidrs)


def test_a_private_only_spec_with_no_way_in_stops_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch,
):
    spec = spec_named("closed", build_access_cidrs=[])
    monkeypatch.delenv(RUNNER_ENV, raising=False)
    with pytest.raises(SpecError) as refused:
        preflight(spec, [])
    (problem,) = refused.value.problems
    assert "private-only" in problem and "eks.build_access_cidrs" in problem
    assert "in-cluster work pool" in problem and "docs/aws-account.md" in problem
    monkeypatch.setenv(RUNNER_ENV, IN_CLUSTER)
    preflight(spec, [])  # inside the VPC: nothing to open


def test_built_from_outside_through_the_build_cidrs_and_refused_once_private(
    sandbox: Sandbox,
):
    spec, aws = spec_named("reach"), new_clients(sandbox)
    eks, name = aws("eks"), spec.eks.cluster_name
    ensure_cluster(spec, aws, ensure_network(spec, aws), ensure_roles(spec, aws), FAST)
    vpc = eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]
    assert (vpc["endpointPublicAccess"], vpc["endpointPrivateAccess"]) == (True, True)
    assert vpc["publicAccessCidrs"] == spec.eks.build_access_cidrs  # never 0.0.0.0/0
    assert list_namespaces(aws, name) == "answered"

    for others in (["198.51.100.0/24"], None):  # public for others only, then private only
        access = (
            {"endpointPublicAccess": True, "publicAccessCidrs": others}
            if others
            else {"endpointPublicAccess": False}
        )
        update = eks.update_cluster_config(name=name, resourcesVpcConfig=access)["update"]
        wait_update(aws, name, update, FAST)
        began = time.monotonic()
        assert list_namespaces(aws, name) == "no answer"
        assert time.monotonic() - began < 30  # refused at once, not after a long hang


def list_namespaces(aws, cluster: str) -> str:
    with api_client(aws, cluster, None) as api:
        api.rest_client.pool_manager.connection_pool_kw["retries"] = False
        try:
            k8s.CoreV1Api(api).list_namespace(_request_timeout=(5, 5))
        except (MaxRetryError, ProtocolError, ConnectionError):
            return "no answer"
    return "answered"


def test_a_cluster_handed_to_its_worker_stops_runs_from_outside_until_reopened(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv(RUNNER_ENV, raising=False)
    spec, aws = spec_named("handed"), new_clients(sandbox)
    spec = spec.model_copy(update={"runner": spec.runner.model_copy(update={"hand_over": True})})
    eks, name = aws("eks"), spec.eks.cluster_name
    ensure_cluster(spec, aws, ensure_network(spec, aws), ensure_roles(spec, aws), FAST)
    check_reach(spec, aws)  # being built from outside: open to the build CIDRs

    assert hand_over(spec, aws, FAST) == [
        f"endpoint of {name}: public access off, handed to the in-cluster worker"
    ]
    assert hand_over(spec, aws, FAST) == []  # done already
    vpc = eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]
    assert (vpc["endpointPublicAccess"], vpc["endpointPrivateAccess"]) == (False, True)
    assert list_namespaces(aws, name) == "no answer"
    with pytest.raises(SpecError) as refused:
        check_reach(spec, aws)  # a run from outside stops before touching anything
    (problem,) = refused.value.problems
    assert f"work pool {work_pool(spec)!r}" in problem and "docs/aws-account.md" in problem
    assert "runner.hand_over: false" in problem  # and how to build from outside again
    monkeypatch.setenv(RUNNER_ENV, IN_CLUSTER)
    check_reach(spec, aws)  # the worker's runs go on
    monkeypatch.delenv(RUNNER_ENV)

    # A teardown, which runs from outside, opens the build access again first.
    assert converge_endpoint(spec, aws, owned_cluster(spec, aws), FAST) is True
    assert list_namespaces(aws, name) == "answered"
