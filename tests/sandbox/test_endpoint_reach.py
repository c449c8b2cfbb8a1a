"""Reaching a private cluster: the sandbox answers a runner outside the VPC only through
public access that lets its address in, and the product builds a private-only cluster
from outside through public access for ``eks.build_access_cidrs`` alone."""

from __future__ import annotations

import ipaddress
import time

import pytest
from kubernetes import client as k8s
from urllib3.exceptions import MaxRetryError, ProtocolError

from blueprint.catalogue import load_catalogue
from blueprint.errors import SpecError
from sandbox.cluster import RUNNER_ADDRESS
from tasks.aws.eks import ensure_cluster
from tasks.aws.iam import ensure_roles
from tasks.aws.updates import wait_update
from tasks.aws.vpc import ensure_network
from tasks.inputs import preflight
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
