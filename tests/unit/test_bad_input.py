"""Bad input stops a command with exit status 2 and one ``error:`` line naming what is
wrong, before anything starts; a stored pid is signalled only while it is still the
process that was started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blueprint.errors import SpecError
from blueprint.loader import load_spec
from sandbox.processes import alive, start_ticks

PLATFORMCTL = Path(sys.executable).with_name("platformctl")


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # No Prefect server may be reached or started: a run that got that far would say so.
    env = {**os.environ, "COLUMNS": "1000", "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    env["PLATFORM_SANDBOX_DIR"] = str(cwd / ".sandbox")
    env["PLATFORM_STACK_DIR"] = str(cwd / ".stack")
    return subprocess.run(
        [str(PLATFORMCTL), *args], capture_output=True, text=True, timeout=60, env=env, cwd=cwd
    )


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


@pytest.mark.parametrize("env", ["", "../platform", "environments/sandbox", "nowhere"])
def test_an_environment_is_a_known_overlay_name(env: str):
    with pytest.raises(SpecError) as failed:
        load_spec(env)
    assert failed.value.problems == [
        f"--env: unknown environment {env!r} (known: production, sandbox)"
    ]


@pytest.mark.parametrize(
    ("command", "env"), [("plan", ""), ("up", ""), ("up", "../platform"), ("inventory", "")]
)
def test_commands_refuse_an_environment_that_is_not_an_overlay(
    tmp_path: Path, command: str, env: str
):
    line = one_error(run(tmp_path, command, "--env", env))
    assert f"unknown environment {env!r}" in line
    assert not (tmp_path / ".sandbox").exists()  # nothing started


@pytest.mark.parametrize(
    ("content", "wanted"),
    [
        ("time_scale: [1\n", "invalid YAML"),
        ("time_scale: abc\n", "time_scale: 'abc' is not a number"),
        ("faults: [{name: aws-throttle, when: now}]\n", "faults:"),
    ],
)
def test_sandbox_settings_that_do_not_parse(tmp_path: Path, content: str, wanted: str):
    settings = tmp_path / "settings.yaml"
    settings.write_text(content)
    line = one_error(run(tmp_path, "sandbox", "up", "--settings", str(settings)))
    assert str(settings) in line and wanted in line, line
    assert not (tmp_path / ".sandbox" / "state.json").exists()


def test_stack_down_leaves_a_process_that_got_the_stored_pid_alone(tmp_path: Path):
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        stack_dir = tmp_path / ".stack"
        stack_dir.mkdir()
        recorded = {"pid": stranger.pid, "started": (start_ticks(stranger.pid) or 0) - 1}
        (stack_dir / "state.json").write_text(
            json.dumps({"server": {**recorded, "log": "server.log"}})
        )
        result = run(tmp_path, "stack", "down")
        assert result.returncode == 0, result.stderr
        assert f"not signalled: pid {stranger.pid} is no longer the process" in result.stdout
        time.sleep(0.2)
        assert alive(stranger.pid)
    finally:
        stranger.kill()
        stranger.wait()
