"""``platformctl plan``: exit codes, messages and the JSON shape, through the real script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from blueprint.catalogue import load_catalogue

PLATFORMCTL = Path(sys.executable).with_name("platformctl")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(PLATFORMCTL), *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.fixture(scope="module")
def plan_json():
    result = run("plan", "--env", "sandbox", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_json_shape(plan_json):
    assert {
        "components",
        "critical_path",
        "critical_path_minutes",
        "guide_phase_plan_minutes",
    } <= set(plan_json)
    for c in plan_json["components"]:
        assert {"name", "workflow", "needs", "start_min", "finish_min", "critical"} <= set(c)
        assert isinstance(c["needs"], list) and isinstance(c["critical"], bool)
    assert {c["name"] for c in plan_json["components"]} == set(load_catalogue().names)
    names = {c["name"] for c in plan_json["components"]}
    assert set(plan_json["critical_path"]) <= names
    assert plan_json["critical_path_minutes"] < plan_json["guide_phase_plan_minutes"]


def test_table_output():
    result = run("plan", "--env", "sandbox")
    assert result.returncode == 0, result.stderr
    for text in ("foundation", "data-services", "Critical path: vpc", "guide's phase plan", "KPI"):
        assert text in result.stdout


def test_profile_changes_the_figures():
    low = json.loads(run("plan", "--json", "--profile", "min").stdout)
    high = json.loads(run("plan", "--json", "--profile", "max").stdout)
    assert low["critical_path_minutes"] < high["critical_path_minutes"]
    assert (low["guide_phase_plan_minutes"], high["guide_phase_plan_minutes"]) == (71, 97)


def _fails(result, *expected: str) -> list[str]:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines), lines
    for text in expected:
        assert any(text in line for line in lines), (text, lines)
    return lines


def test_bad_yaml(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("eks: {cluster_name: x\n")
    _fails(run("plan", "--spec", str(f)), "invalid YAML", str(f))


def test_unknown_field(tmp_path):
    f = tmp_path / "typo.yaml"
    f.write_text("eks:\n  log_retention: 7\n")
    _fails(run("plan", "--spec", str(f)), "eks.log_retention: unknown field")


def test_bad_values_one_line_each(tmp_path):
    f = tmp_path / "values.yaml"
    f.write_text(
        "node_groups: {system: {min_size: 5}}\n"
        "gates: {foundation: {timeout: 10s}}\n"
        "resource_allocation: {shares: {scaling_buffer: 6}}\n"
    )
    lines = _fails(
        run("plan", "--env", "sandbox", "--spec", str(f)),
        "node_groups.system: sizes must satisfy min_size <= desired_size <= max_size",
        "gates.foundation.timeout: 10s is shorter than retry_interval 30s",
        "resource_allocation.shares: shares sum to 101%",
    )
    assert len(lines) == 3


def test_cycle(tmp_path):
    f = tmp_path / "cycle.yaml"
    f.write_text("extra_needs:\n  iam: {grafana: 'a made-up need'}\n")
    _fails(run("plan", "--spec", str(f)), "dependency cycle: iam -> grafana", "-> eks -> iam")


def test_unknown_environment_and_profile():
    _fails(run("plan", "--env", "staging"), "unknown environment 'staging'")
    _fails(run("plan", "--profile", "typical"), "--profile")


def test_missing_spec_file(tmp_path):
    _fails(run("plan", "--spec", str(tmp_path / "nope.yaml")), "cannot read")


# ----------------------------------------------------- what the run needs from the account

NO_AWS = {
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def run_without_aws(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(NO_AWS, COLUMNS="200", **extra)
    return subprocess.run(
        [str(PLATFORMCTL), *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_plan_names_the_quotas_and_the_principal(plan_json):
    account = plan_json["account"]
    assert account["region"] == "us-east-1"
    assert "sandbox" in account["runs_as"]
    codes = {q["code"]: q for q in account["quotas"]}
    assert codes["L-1216C47A"]["needed"] == 6 and codes["L-34B43A08"]["at_most"] == 16
    assert "account_check" not in plan_json
    table = run("plan", "--env", "production").stdout
    assert "What the run needs from the account (region eu-west-1)" in table
    assert "ec2/L-0263D0A3" in table and "platformctl iam-policy --env production" in table


def test_check_account_without_a_sandbox_running_says_so(tmp_path):
    result = run_without_aws(
        "plan", "--env", "sandbox", "--check-account", PLATFORM_SANDBOX_DIR=str(tmp_path)
    )
    _fails(result, "--check-account: --env sandbox: no sandbox running")


def test_iam_policy_is_a_policy_document_with_a_named_placeholder():
    result = run_without_aws("iam-policy", "--env", "production")
    assert result.returncode == 0, result.stderr
    policy = json.loads(result.stdout)
    assert policy["Version"] == "2012-10-17" and isinstance(policy["Statement"], list)
    for statement in policy["Statement"]:
        assert {"Effect", "Action", "Resource"} <= set(statement)
    assert "${AWS::AccountId}" in result.stdout
    assert result.stderr.startswith("note: no AWS credentials found: ${AWS::AccountId}")
    named = json.loads(run_without_aws("iam-policy", "--account", "111122223333").stdout)
    assert ":111122223333:" in json.dumps(named) and "AccountId" not in json.dumps(named)


def test_iam_policy_bad_input():
    _fails(run_without_aws("iam-policy", "--account", "12345"), "--account: '12345' is not")
    _fails(run_without_aws("iam-policy", "--env", "staging"), "unknown environment 'staging'")
