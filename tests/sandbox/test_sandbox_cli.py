"""``platformctl sandbox up | status | fault | down`` as a user runs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from sandbox.processes import group_members

PLATFORMCTL = Path(sys.executable).with_name("platformctl")
URL_KEYS = ("aws_endpoint_url", "kube_url", "chart_repository", "control_url")


def ctl(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Saving the Prefect blocks is tested with a Prefect server (tests/e2e/test_deployments.py).
    return subprocess.run(
        [str(PLATFORMCTL), "sandbox", *args, "--dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}, "COLUMNS": "200"},
    )


def listening(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("sandbox")
    result = ctl(state_dir, "up", "--fault", "addon-degraded:coredns")
    assert result.returncode == 0, result.stderr
    state = json.loads((state_dir / "state.json").read_text())
    yield state_dir, state, result.stdout
    ctl(state_dir, "down")


def test_up_writes_what_the_product_reads(sandbox):
    state_dir, state, out = sandbox
    assert "sandbox up in" in out
    assert "Prefect blocks  not saved (no PREFECT_API_URL" in out  # no server, no blocks
    target = json.loads((state_dir / "target.json").read_text())
    assert target["aws_endpoint_url"].startswith("http://127.0.0.1:")
    assert target["chart_repository"].startswith("http://127.0.0.1:")
    assert Path(target["kubeconfig"]).is_file()
    env = (state_dir / "target.env").read_text()
    assert "export AWS_ENDPOINT_URL=" in env and "export KUBECONFIG=" in env
    assert all(listening(state[k]) for k in URL_KEYS)


def test_second_up_changes_nothing(sandbox):
    state_dir, state, _ = sandbox
    result = ctl(state_dir, "up")
    assert result.returncode == 0
    assert f"already running (pid {state['pid']})" in result.stdout
    assert json.loads((state_dir / "state.json").read_text()) == state


def test_status_and_faults(sandbox):
    state_dir, state, _ = sandbox
    info = json.loads(ctl(state_dir, "status", "--json").stdout)
    assert info["pid"] == state["pid"] and all(info["health"].values())
    assert info["settings"]["faults"] == [
        {"name": "addon-degraded", "target": "coredns", "count": None}
    ]
    added = ctl(state_dir, "fault", "add", "aws-throttle", "--target", "eks:*", "--count", "2")
    assert added.returncode == 0, added.stderr
    info = json.loads(ctl(state_dir, "status", "--json").stdout)
    assert {"name": "aws-throttle", "target": "eks:*", "count": 2} in info["settings"]["faults"]
    assert ctl(state_dir, "fault", "clear").returncode == 0
    assert json.loads(ctl(state_dir, "status", "--json").stdout)["settings"]["faults"] == []
    bad = ctl(state_dir, "fault", "add", "gremlins")
    assert bad.returncode == 2 and "unknown fault 'gremlins'" in bad.stderr


def test_down_leaves_nothing_behind(tmp_path):
    result = ctl(tmp_path, "up")
    assert result.returncode == 0, result.stderr
    state = json.loads((tmp_path / "state.json").read_text())
    assert group_members(state["pid"])
    stopped = ctl(tmp_path, "down")
    assert stopped.returncode == 0, stopped.stderr
    assert "sandbox stopped" in stopped.stdout
    assert group_members(state["pid"]) == []
    assert not any(listening(state[k]) for k in URL_KEYS)
    assert not (tmp_path / "state.json").exists()
    assert "no sandbox was running" in ctl(tmp_path, "down").stdout
    assert ctl(tmp_path, "status").returncode == 1


def test_bad_settings_are_rejected_before_starting(tmp_path):
    result = ctl(tmp_path, "up", "--time-scale", "-1")
    assert result.returncode == 2 and "--time-scale" in result.stderr
    assert not (tmp_path / "state.json").exists()


def platformctl(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command of the product against the sandbox of ``state_dir``."""
    return subprocess.run(
        [str(PLATFORMCTL), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
            "COLUMNS": "250",
            "PLATFORM_SANDBOX_DIR": str(state_dir),
        },
    )


def test_plan_checks_the_account_and_exits_1_when_a_quota_is_short(sandbox, tmp_path):
    state_dir, _, _ = sandbox
    result = platformctl(state_dir, "plan", "--env", "sandbox", "--check-account")
    assert result.returncode == 0, result.stderr
    assert "Account 123456789012, region us-east-1" in result.stdout
    assert "Runs as: arn:aws:sts::123456789012:" in result.stdout
    assert "ec2/L-1216C47A" in result.stdout and "short" not in result.stdout

    site = tmp_path / "site.yaml"
    site.write_text("node_groups: {workload: {desired_size: 20, max_size: 20}}\n")
    args = ("plan", "--env", "sandbox", "--spec", str(site), "--check-account", "--json")
    short = platformctl(state_dir, *args)
    assert short.returncode == 1, short.stderr
    checked = json.loads(short.stdout)["account_check"]
    assert checked["short"] == ["All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests"]
    (spot,) = [q for q in checked["quotas"] if q["code"] == "L-34B43A08"]
    assert (spot["needed"], spot["limit"], spot["status"]) == (40, 32, "short")


def test_iam_policy_names_the_sandbox_account(sandbox):
    state_dir, _, _ = sandbox
    result = platformctl(state_dir, "iam-policy", "--env", "sandbox")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    policy = json.loads(result.stdout)
    assert ":123456789012:" in json.dumps(policy) and "AWS::AccountId" not in result.stdout
