"""Benchmarks: ``make bench``. Measures, prints and saves (``.runs/bench-<time>.json``):

- sandbox start (``platformctl sandbox up``) and stop, cold process each time;
- a whole-platform run on the sandbox per time scale: wall time, the components' span, the
  slowest components, and the planned critical path at that scale (the guide's minutes x
  scale) for comparison; how late components followed their last need (the run report's
  scheduling delays: noticed and submitted, and started); then a re-run, which must change
  nothing;
- the whole experience (``platformctl stack up``): each step's seconds, the platform
  deployment's run from creation to its end (including the worker's pickup), a second
  ``stack up`` that reuses the server and worker, and ``stack down``.

Performance goals are checked here, not in timed unit tests.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from blueprint.catalogue import load_catalogue
from blueprint.loader import load_spec
from blueprint.plan import plan
from tests.e2e import prefect_server as servers

PLATFORMCTL = str(Path(sys.executable).with_name("platformctl"))
SANDBOX_UP_GOAL_S = 5.0
LOCAL_AWS_GOAL_S = 1.5  # LocalAws alone, imports included: what every sandbox start pays
LOCAL_AWS_START = """
import time
began = time.perf_counter()
from sandbox.aws.server import LocalAws
from sandbox.settings import SandboxSettings
aws = LocalAws(SandboxSettings()).start()
started = time.perf_counter() - began
aws.stop()
print(started)
"""
# A component's task is submitted this soon after its last need finished (median, max).
SUBMITTED_GOAL_S = (0.05, 0.5)


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLATFORMCTL, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900
    )


def bench_sandbox(env: dict[str, str], cwd: Path, rounds: int) -> dict:
    ups, downs = [], []
    for _ in range(rounds):
        began = time.monotonic()
        result = run(["sandbox", "up", "--no-blocks"], env, cwd)
        ups.append(time.monotonic() - began)
        assert result.returncode == 0, result.stderr
        began = time.monotonic()
        run(["sandbox", "down"], env, cwd)
        downs.append(time.monotonic() - began)
    local_aws = [
        float(
            subprocess.run(
                [sys.executable, "-c", LOCAL_AWS_START], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(rounds)
    ]
    return {
        "local_aws_start_s": {"median": statistics.median(local_aws), "all": local_aws},
        "local_aws_start_goal_s": LOCAL_AWS_GOAL_S,
        "sandbox_up_s": {"median": statistics.median(ups), "all": ups},
        "sandbox_down_s": {"median": statistics.median(downs), "all": downs},
        "sandbox_up_goal_s": SANDBOX_UP_GOAL_S,
        "sandbox_up_within_goal": statistics.median(ups) < SANDBOX_UP_GOAL_S,
    }


def bench_platform(env: dict[str, str], cwd: Path, time_scale: float, server: str) -> dict:
    run(["sandbox", "down"], env, cwd)  # every round on a fresh sandbox
    began = time.monotonic()
    result = run(["up", "--env", "sandbox", "--time-scale", str(time_scale)], env, cwd)
    wall = time.monotonic() - began
    assert result.returncode == 0, result.stdout + result.stderr
    report_dir = max((cwd / ".runs").iterdir(), key=lambda p: p.stat().st_mtime)
    report = json.loads((report_dir / "report.json").read_text())
    second = time.monotonic()
    rerun = run(["up", "--env", "sandbox", "--time-scale", str(time_scale)], env, cwd)
    rerun_wall = time.monotonic() - second
    run(["sandbox", "down"], env, cwd)
    planned = plan(load_spec("sandbox"), load_catalogue(), "max")
    slowest = sorted(report["components"], key=lambda c: -(c["duration_s"] or 0))[:5]
    return {
        "time_scale": time_scale,
        "prefect_database": server,
        "command_wall_s": round(wall, 2),
        "flow_wall_s": report["wall_s"],
        "components_span_s": round(span(report), 2),
        "rerun_command_wall_s": round(rerun_wall, 2),
        "rerun_ok": rerun.returncode == 0,
        "planned_critical_path_s": round(planned.critical_path_minutes * time_scale, 2),
        "slowest": [(c["name"], c["duration_s"]) for c in slowest],
        "scheduling": {
            moment: {k: delays[k] for k in ("median_s", "p95_s", "max_s")}
            for moment, delays in report["scheduling"].items()
        },
    }


def bench_stack(env: dict[str, str], cwd: Path) -> dict:
    stack_env = {**env, "PLATFORM_STACK_DIR": str(cwd / ".stack")}
    rounds = []
    for _ in range(2):  # cold, then reusing the server and the worker
        began = time.monotonic()
        result = run(["stack", "up", "--port", "0"], stack_env, cwd)
        wall = time.monotonic() - began
        state = json.loads((cwd / ".stack" / "state.json").read_text())
        assert result.returncode == 0, result.stdout + result.stderr
        last = state["last_run"]
        rounds.append(
            {
                "command_wall_s": round(wall, 2),
                "steps_s": state["timings"],
                "run_state": last["state"],
                "run_wall_s": last["wall_seconds"],
                "flow_run_s": last["seconds"],
            }
        )
    began = time.monotonic()
    run(["stack", "down"], stack_env, cwd)
    return {"first": rounds[0], "again": rounds[1], "down_s": round(time.monotonic() - began, 2)}


def span(report: dict) -> float:
    """From the first component's start to the last one's finish (no Prefect start-up)."""
    runs = [c for c in report["components"] if c["started_at"] and c["finished_at"]]
    starts = [datetime.fromisoformat(c["started_at"]) for c in runs]
    ends = [datetime.fromisoformat(c["finished_at"]) for c in runs]
    return (max(ends) - min(starts)).total_seconds()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        env = {
            **os.environ,
            "PLATFORM_SANDBOX_DIR": str(cwd / ".sandbox"),
            "PREFECT_HOME": str(cwd / "prefect"),
        }
        env.pop("PREFECT_API_URL", None)
        results = {"sandbox": bench_sandbox(env, cwd, rounds=3)}
        # platformctl up's own temporary Prefect server (SQLite), then a served one on
        # PostgreSQL where the machine has it (tests/e2e/prefect_server.py).
        results["platform"] = [bench_platform(env, cwd, s, "sqlite") for s in (0.0, 0.2)]
        if servers.postgres_bin() is not None:
            with (
                servers.postgres() as cluster,
                servers.prefect_server(cwd / "pg", cluster.url()) as url,
            ):
                results["platform"].append(
                    bench_platform({**env, "PREFECT_API_URL": url}, cwd, 0.0, "postgresql")
                )
        results["stack"] = bench_stack(env, cwd)
    out = Path.cwd() / ".runs" / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    sandbox = results["sandbox"]
    verdict = "met" if sandbox["sandbox_up_within_goal"] else "MISSED"
    print(
        f"sandbox up: median {sandbox['sandbox_up_s']['median']:.2f}s "
        f"(goal < {SANDBOX_UP_GOAL_S}s: {verdict}),"
        f" down: median {sandbox['sandbox_down_s']['median']:.2f}s; LocalAws alone starts in"
        f" {sandbox['local_aws_start_s']['median']:.2f}s (goal < {LOCAL_AWS_GOAL_S}s)"
    )
    scheduling_met = True
    for row in results["platform"]:
        print(
            f"platform at time scale {row['time_scale']} (Prefect on {row['prefect_database']}):"
            f" components {row['components_span_s']}s"
            f" (planned critical path {row['planned_critical_path_s']}s), flow "
            f"{row['flow_wall_s']:.1f}s, command {row['command_wall_s']:.1f}s, re-run "
            f"{row['rerun_command_wall_s']:.1f}s ({'ok' if row['rerun_ok'] else 'FAILED'}); "
            f"slowest: {row['slowest']}"
        )
        submitted, started = row["scheduling"]["submitted"], row["scheduling"]["started"]
        median_goal, max_goal = SUBMITTED_GOAL_S
        met = submitted["median_s"] < median_goal and submitted["max_s"] < max_goal
        # The goal is stated at time scale 0, where no simulated wait hides the scheduling.
        graded = row["time_scale"] == 0
        scheduling_met &= met or not graded
        verdict = ("met" if met else "MISSED") if graded else "goal at time scale 0 only"
        print(
            f"  after its last need, a component was submitted in {ms(submitted['median_s'])}"
            f" (median), {ms(submitted['max_s'])} (max) (goal < 50 ms, < 500 ms: {verdict});"
            f" it started in {ms(started['median_s'])} (median), {ms(started['max_s'])} (max)"
        )
    stack = results["stack"]
    for name in ("first", "again"):
        row = stack[name]
        print(
            f"stack up ({name}): command {row['command_wall_s']:.1f}s, steps {row['steps_s']}, "
            f"platform deployment run {row['run_state']} in {row['run_wall_s']:.1f}s "
            f"(flow run {row['flow_run_s']:.1f}s)"
        )
    print(f"stack down: {stack['down_s']:.1f}s")
    print(f"saved {out}")
    return 0 if sandbox["sandbox_up_within_goal"] and scheduling_met else 1


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


if __name__ == "__main__":
    sys.exit(main())
