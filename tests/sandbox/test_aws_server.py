"""LocalAws as a server: clean stop, one per process, clients via the environment. (Its
start time is measured by ``make bench``.)"""

from __future__ import annotations

import socket
import threading
import time

import boto3
import pytest

from sandbox.aws.server import LocalAws, client_env
from sandbox.settings import SandboxSettings

pytestmark = pytest.mark.sandbox


def refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_stop_closes_the_port_and_ends_every_thread_even_with_a_silent_client():
    before = set(threading.enumerate())
    aws = LocalAws(SandboxSettings()).start()
    port = aws.port
    sts = boto3.client("sts", endpoint_url=aws.url, region_name="eu-west-1", **credentials())
    assert sts.get_caller_identity()["Account"] == "123456789012"
    with socket.create_connection(("127.0.0.1", port)):  # connected, never sends a request
        time.sleep(0.1)  # until the server has a thread waiting for that request
        assert len(set(threading.enumerate()) - before) == 2  # the server and that thread
        stopping = threading.Thread(target=aws.stop)
        stopping.start()
        stopping.join(timeout=5)
        assert not stopping.is_alive()
    assert set(threading.enumerate()) - before == set()
    assert refused(port)


def test_one_local_aws_per_process_and_each_start_begins_empty():
    with LocalAws(SandboxSettings()) as first:
        ec2 = boto3.client("ec2", endpoint_url=first.url, region_name="eu-west-1", **credentials())
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        with pytest.raises(RuntimeError, match="already running"):
            LocalAws(SandboxSettings()).start()
    with LocalAws(SandboxSettings()) as second:
        ec2 = boto3.client("ec2", endpoint_url=second.url, region_name="eu-west-1", **credentials())
        assert vpc not in [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
        assert second.calls() == {"ec2:DescribeVpcs": 1}


def test_clients_reach_it_through_the_environment(monkeypatch):
    with LocalAws(SandboxSettings()) as aws:
        env = aws.env("eu-central-1")
        assert env == client_env(aws.url, "eu-central-1")
        assert env["AWS_ENDPOINT_URL"] == aws.url
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        eks = boto3.Session().client("eks")
        assert eks.meta.region_name == "eu-central-1"
        assert eks.list_clusters()["clusters"] == []
        assert aws.calls() == {"eks:ListClusters": 1}


def credentials() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
