"""The whole experience as users get it: ``platformctl stack up`` starts a Prefect server, the
sandbox and a worker, deploys ``prefect.yaml`` and runs the platform deployment; CI starts
runs with ``deployments/ci-run``; ``platformctl stack down`` leaves nothing running."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from blueprint.loader import load_spec
from blueprint.spec import WORKFLOWS, dns_token_block
from sandbox.processes import group_members
from tests.e2e import prefect_queries
from tests.e2e import prefect_server as servers
from tests.e2e.prefect_queries import unstamped

ROOT = Path(__file__).resolve().parents[2]
PLATFORMCTL = Path(sys.executable).with_name("platformctl")
CI_RUN = ROOT / "deployments" / "ci-run"
SPEC = load_spec("sandbox")


class Stack:
    def __init__(self, folder: Path):
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.env.update(
            PLATFORM_STACK_DIR=str(folder / "stack"),
            PLATFORM_SANDBOX_DIR=str(folder / "sandbox"),
            # No scheduled re-validation may start in the middle of these tests.
            PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
            COLUMNS="200",
        )
        self.up: subprocess.CompletedProcess[str] | None = None

    @property
    def state(self) -> dict[str, Any]:
        return json.loads((self.folder / "stack" / "state.json").read_text())

    def client_env(self) -> dict[str, str]:
        state = self.state
        return {
            **self.env,
            "PREFECT_API_URL": state["api_url"],
            "PREFECT_HOME": state["prefect_home"],
        }

    def platformctl(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PLATFORMCTL), *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ci_run(self, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CI_RUN), *args],
            cwd=self.folder,
            env={**self.client_env(), "PLATFORM_RUN_TIMEOUT": str(timeout)},
            capture_output=True,
            text=True,
            timeout=660,
        )

    def api(self, call: str, *args: Any) -> Any:
        """One query of the stack's Prefect server (tests/e2e/prefect_queries.py)."""
        state = self.state
        settings = {PREFECT_API_URL: state["api_url"]}
        with temporary_settings(updates=settings):
            return asyncio.run(getattr(prefect_queries, call)(*args))


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, postgres: servers.Postgres | None
) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("stack"))
    if postgres is not None:  # the documented way to PostgreSQL: a PREFECT_SERVER_* setting
        running.env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = postgres.database("stack")
    try:
        running.up = running.platformctl("stack", "up", "--port", "0", timeout=900)
        yield running
    finally:
        running.platformctl("stack", "down", timeout=120)


def test_stack_up_deploys_everything_and_the_platform_run_completes(stack: Stack) -> None:
    assert stack.up is not None
    assert stack.up.returncode == 0, stack.up.stdout + stack.up.stderr
    out = stack.up.stdout
    state = stack.state
    assert f"Prefect UI: {state['ui_url']}" in out
    assert state["ui_url"].startswith("http://127.0.0.1:")
    for step in ("prefect server", "sandbox and blocks", "deployments", "worker"):
        assert step in state["timings"]
    last = state["last_run"]
    assert last["state"] == "Completed"
    assert unstamped(last["flow_run"]) == "bootstrap-sandbox"
    assert f"run in the UI: {last['url']}" in out
    # Every workflow is its own subflow run, readable in the UI, with its components.
    names = sorted(unstamped(w["name"]) for w in last["workflows"])
    assert names == sorted(f"{w}-sandbox" for w in WORKFLOWS)
    assert all(w["state"] == "Completed" for w in last["workflows"])
    assert all(w["tasks"] == w["tasks_completed"] > 0 for w in last["workflows"])
    assert "foundation-validation" in last["artifacts"]

    deployments = stack.api("deployments")
    names = {d["name"] for d in deployments}
    flows = {d["flow"] for d in deployments}
    assert names == {"sandbox"}
    assert flows == {"bootstrap_platform", "revalidate_platform", "teardown_platform", *WORKFLOWS}
    assert {d["work_pool"] for d in deployments} == {"platform-process"}
    revalidate = next(d for d in deployments if d["flow"] == "revalidate_platform")
    assert revalidate["crons"] == [SPEC.health_monitoring.revalidation_cron]
    platform = next(d for d in deployments if d["flow"] == "bootstrap_platform")
    properties = platform["parameter_schema"]["properties"]
    assert {"environment", "workflows", "time_scale", "spec_file"} <= set(properties)
    assert all(p.get("description") for p in properties.values())

    tasks = stack.api("task_run_names", last["flow_run_id"])
    assert {"vpc", "eks", "node-groups", "argocd", "foundation-gate"} <= set(tasks)


def test_sandbox_blocks_are_saved_and_linked(stack: Stack) -> None:
    blocks = stack.api("blocks")
    token = dns_token_block(SPEC)
    assert {
        "platform-target/sandbox",
        "aws-credentials/sandbox",
        f"secret/{token}",
    } <= set(blocks["names"])
    # The target refers to the saved credentials block rather than embedding a copy, and
    # to no kubeconfig: it reaches the cluster through EKS, as on AWS.
    assert blocks["target_refers_to"] == ["aws-credentials/sandbox"]


def test_ci_run_exits_with_the_run_outcome(stack: Stack) -> None:
    done = stack.ci_run("bootstrap_platform/sandbox", "--param", 'workflows=["gitops"]')
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Completed" in done.stdout

    bad = stack.ci_run("bootstrap_platform/sandbox", "--param", "environment=nowhere")
    assert bad.returncode == 1, bad.stdout + bad.stderr

    usage = subprocess.run([str(CI_RUN)], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_ci_run_cancels_a_run_it_stops_following(stack: Stack) -> None:
    late = stack.ci_run("bootstrap_platform/sandbox", timeout=2)
    assert late.returncode == 1, late.stdout + late.stderr
    said = [line for line in late.stderr.splitlines() if line.startswith("ci-run: ")]
    assert len(said) == 1 and "not over within 2s: cancelled flow run" in said[0], late.stderr
    run_id = said[0].rsplit(" ", 1)[1]
    assert stack.api("final_state", run_id) == "Cancelled"


def test_revalidate_reports_a_deleted_release_and_remediate_restores_it(stack: Stack) -> None:
    sandbox = json.loads((stack.folder / "sandbox" / "state.json").read_text())
    helm = str(ROOT / ".tools" / "bin" / "helm")
    namespace = SPEC.namespaces["gitops"]
    deleted = subprocess.run(
        [helm, "uninstall", "argocd", "-n", namespace, "--kubeconfig", sandbox["kubeconfig"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert deleted.returncode == 0, deleted.stderr

    drifted = stack.ci_run("revalidate_platform/sandbox")
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    rows = {r["component"]: r for r in stack.api("artifact_table", "drift-sandbox")}
    assert rows["argocd"]["status"] == "missing"
    assert {name for name, row in rows.items() if row["status"] != "ok"} == {"argocd"}
    # The drift automation told the notification block (the sandbox's recording webhook).
    told = notifications(sandbox, wanted=1)
    assert len(told) == 1, told
    assert told[0]["subject"] == "Platform sandbox: drift detected"
    assert "argocd" in told[0]["body"]

    # A remediation re-checks what it converged and fails while drift is left.
    fixed = stack.ci_run("revalidate_platform/sandbox", "--param", "remediate=true")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    rows = {r["component"]: r for r in stack.api("artifact_table", "drift-sandbox")}
    assert (rows["argocd"]["before"], rows["argocd"]["after"]) == ("missing", "ok")
    assert {name for name, row in rows.items() if row["after"] != "ok"} == set()
    # A remediation's own finding is not answered again.
    assert len(notifications(sandbox, wanted=2, timeout=5)) == 1


def notifications(sandbox: dict[str, Any], wanted: int, timeout: float = 60) -> list[Any]:
    """What the sandbox's webhook recorded, once it has ``wanted`` (or after ``timeout``):
    automations act asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{sandbox['control_url']}/notifications", timeout=5) as r:
            got = json.loads(r.read())
        if len(got) >= wanted or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def test_production_deployments_fit_the_kubernetes_pool(stack: Stack) -> None:
    """The documented scale-out path, minus a cluster: prefect-kubernetes' pool type with
    its default job template accepts every job variable prefect.yaml sets."""
    prefect = str(Path(sys.executable).with_name("prefect"))
    env = {**stack.client_env(), "PLATFORM_IMAGE": "registry.example/platform-bootstrap:1.0"}

    def run(*args: str) -> None:
        done = subprocess.run(
            [prefect, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr

    run("work-pool", "create", "platform-production", "--type", "kubernetes")
    # One is enough: they share their pool settings (tests/unit/test_prefect_yaml.py).
    run("--no-prompt", "deploy", "--name", "bootstrap_platform/production")
    production = [d for d in stack.api("deployments") if d["name"] == "production"]
    assert [d["flow"] for d in production] == ["bootstrap_platform"]
    assert production[0]["work_pool"] == "platform-production"
    variables = production[0]["job_variables"]
    assert variables["image"] == "registry.example/platform-bootstrap:1.0"
    assert variables["service_account_name"] == "platform-runner"
    assert variables["memory_limit"] == "2Gi"


def test_stack_down_stops_everything(stack: Stack) -> None:
    state = stack.state
    groups = [state["server"]["pid"], state["worker"]["pid"]]
    done = stack.platformctl("stack", "down", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "worker stopped" in done.stdout and "server stopped" in done.stdout
    assert "sandbox stopped" in done.stdout
    assert [group_members(g) for g in groups] == [[], []]
    assert not (stack.folder / "stack" / "state.json").exists()
    again = stack.platformctl("stack", "down")
    assert "no stack was running" in again.stdout
