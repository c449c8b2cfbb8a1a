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
