"""Latency profile and fault bookkeeping of the sandbox (no servers)."""

from __future__ import annotations

import pytest

from sandbox.settings import Fault, FaultBook, Latency, SandboxSettings, SettingsError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("addon-degraded", Fault("addon-degraded", "*", None)),
        ("addon-degraded:coredns", Fault("addon-degraded", "coredns", None)),
        ("aws-throttle:eks:CreateCluster", Fault("aws-throttle", "eks:CreateCluster", None)),
        ("aws-throttle:eks:CreateCluster:3", Fault("aws-throttle", "eks:CreateCluster", 3)),
        ("pods-never-ready:observability/loki", Fault("pods-never-ready", "observability/loki")),
    ],
)
def test_fault_parse(text, expected):
    assert Fault.parse(text) == expected


def test_unknown_fault_and_bad_count():
    with pytest.raises(SettingsError, match="unknown fault 'gremlins'"):
        Fault("gremlins")
    with pytest.raises(SettingsError, match="count"):
        Fault("aws-error", "*", 0)


def test_counted_fault_fires_n_times_then_is_gone():
    book = FaultBook([Fault("aws-throttle", "eks:*", 2)])
    assert not book.fire("aws-throttle", "ec2:CreateVpc")
    assert book.active("aws-throttle", "eks:DescribeCluster")  # looking does not use it up
    assert [book.fire("aws-throttle", "eks:DescribeCluster") for _ in range(3)] == [
        True,
        True,
        False,
    ]
    assert book.list() == [] and book.fired == {"aws-throttle": 2}


def test_standing_fault_until_cleared():
    book = FaultBook([Fault("addon-degraded", "coredns"), Fault("aws-error", "s3:*")])
    assert all(book.fire("addon-degraded", "coredns") for _ in range(5))
    book.clear("addon-degraded")
    assert not book.active("addon-degraded", "coredns") and book.active("aws-error", "s3:GetObject")
    book.clear()
    assert book.list() == []


def test_latency_scales_guide_minutes():
    latency = Latency(time_scale=0.2)
    assert latency.seconds("eks_cluster") == pytest.approx(2.4)
    assert not latency.done("eks_cluster", since=100.0, now=102.0)
    assert latency.done("eks_cluster", since=100.0, now=102.5)
    assert Latency().done("eks_cluster", since=100.0, now=100.0), "off by default"


def test_settings_from_dict_and_errors():
    settings = SandboxSettings.from_dict(
        {
            "time_scale": 0.1,
            "latency_minutes": {"load_balancer": 4},
            "faults": ["lb-never-provisioned:ingress/*", {"name": "aws-error", "count": 1}],
        }
    )
    assert settings.latency.seconds("load_balancer") == pytest.approx(0.4)
    assert [f.name for f in settings.faults.list()] == ["lb-never-provisioned", "aws-error"]
    assert SandboxSettings.from_dict(settings.to_dict()).to_dict() == settings.to_dict()
    with pytest.raises(SettingsError, match="unknown sandbox settings"):
        SandboxSettings.from_dict({"timescale": 1})
    with pytest.raises(SettingsError, match="unknown latency keys"):
        SandboxSettings.from_dict({"latency_minutes": {"coffee": 1}})
