"""``platformctl stack up | down | status``: the whole experience on one machine.

``up`` converges, step by step (each timed): a Prefect server (UI on 127.0.0.1), the
sandbox and its blocks, the block types registered (``prefect block register``), the
process work pool, the deployments of ``prefect.yaml`` (``prefect deploy``), a process
worker; then it runs the platform deployment and follows it to the end. What runs is left
running for the UI; ``down`` stops all of it. A second ``up`` reuses what still runs.

The server keeps its state in ``.stack/prefect`` (SQLite). Setting
``PREFECT_SERVER_DATABASE_CONNECTION_URL`` to a PostgreSQL URL before ``up`` moves it there.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from platformctl import services
from sandbox.processes import alive, stop_group

STATE_FILE = "state.json"
WORK_POOL = "platform-process"
DEPLOYMENTS = "*/sandbox"
PLATFORM_DEPLOYMENT = "bootstrap_platform/sandbox"
WORKER_NAME = "platform-local"
# The worker asks for runs every 2 s instead of 10: a run starts soon after it is created.
WORKER_QUERY_SECONDS = "2"
# Variables of the caller that reach the stack's processes: server settings such as the
# database URL (PostgreSQL); the rest of PREFECT_* (profiles, API keys) would point elsewhere.
PASS_THROUGH = ("PREFECT_SERVER_",)


class StackError(RuntimeError):
    pass


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def default_state_dir() -> Path:
    override = os.environ.get("PLATFORM_STACK_DIR")
    return Path(override) if override else project_root() / ".stack"


def prefect_bin() -> str:
    return str(Path(sys.executable).with_name("prefect"))


def read_state(state_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def write_state(state_dir: Path, state: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({k: v for k, v in os.environ.items() if k.startswith(PASS_THROUGH)})
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"  # no internet calls from the server
    return env


def client_env(state: dict[str, Any]) -> dict[str, str]:
    return {
        **base_env(),
        "PREFECT_HOME": state["prefect_home"],
        "PREFECT_API_URL": state["api_url"],
    }


class Steps:
    """Prints each step with the seconds it took; keeps the timings for the summary."""

    def __init__(self, console: Console):
        self.console, self.timings = console, {}

    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[None]:
        began = time.monotonic()
        yield
        took = time.monotonic() - began
        self.timings[name] = round(took, 2)
        self.console.print(f"{name:<22} {took:6.1f}s  {detail}".rstrip(), markup=False)


def _run(command: list[str], env: dict[str, str], what: str, timeout: float = 300) -> str:
    done = subprocess.run(
        command,
        cwd=project_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise StackError(f"{what} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def running(process: dict[str, Any]) -> bool:
    """Whether the process a state file records still runs (the same process, not another
    that got its pid)."""
    return alive(process["pid"], process.get("started"))


def start_server(state_dir: Path, state: dict[str, Any], port: int | None) -> str:
    """A Prefect server, unless one of ours runs; returns what happened."""
    server = state.get("server")
    if server and running(server):
        return f"running (pid {server['pid']})"
    port = services.free_port(port if port is not None else services.PREFERRED_PORT)
    home = state_dir / "prefect"
    env = {
        **base_env(),
        "PREFECT_HOME": str(home),
        # Host and port by setting, not only by flag: the UI calls the API where these say.
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
    }
    log = state_dir / "server.log"
    command = [prefect_bin(), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    process = services.start(command, env, log, project_root())
    pid = process["pid"]
    ui = f"http://127.0.0.1:{port}"
    state.update(
        server={**process, "port": port, "log": str(log)},
        ui_url=ui,
        api_url=f"{ui}/api",
        prefect_home=str(home),
    )
    write_state(state_dir, state)
    services.wait_healthy(f"{ui}/api/health", pid, 120, log)
    return f"started (pid {pid}), {ui}"


def start_worker(state_dir: Path, state: dict[str, Any]) -> str:
    worker = state.get("worker")
    if worker and running(worker):
        return f"running (pid {worker['pid']})"
    from sandbox.tools import ensure_tools

    env = {
        **client_env(state),
        "PLATFORM_HELM": str(ensure_tools()["helm"]),
        "PREFECT_WORKER_QUERY_SECONDS": WORKER_QUERY_SECONDS,
    }
    log = state_dir / "worker.log"
    command = [
        prefect_bin(),
        "worker",
        "start",
        "--pool",
        WORK_POOL,
        "--type",
        "process",
        "--name",
        WORKER_NAME,
    ]
    process = services.start(command, env, log, project_root())
    pid = process["pid"]
    state["worker"] = {**process, "log": str(log)}
    write_state(state_dir, state)
    asyncio.run(_wait_worker_online(pid, log))
    return f"started (pid {pid}), pool {WORK_POOL}"


async def _wait_worker_online(pid: int, log: Path, timeout: float = 60) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import WorkerFilter, WorkerFilterStatus

    online = WorkerFilter(status=WorkerFilterStatus(any_=["ONLINE"]))
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while time.monotonic() < deadline:
            if not alive(pid):
                raise StackError(f"the worker exited; see {log}:\n{services.tail(log)}")
            workers = await client.read_workers_for_work_pool(WORK_POOL, worker_filter=online)
            if any(w.name == WORKER_NAME for w in workers):
                return
            await asyncio.sleep(0.5)
    raise StackError(f"the worker is not online after {timeout:.0f}s; see {log}")


async def ensure_work_pool() -> str:
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    async with get_client() as client:
        try:
            await client.create_work_pool(
                WorkPoolCreate(
                    name=WORK_POOL,
                    type="process",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                    description="Runs the sandbox deployments on this machine",
                )
            )
        except ObjectAlreadyExists:
            return "exists"
    return "created"


def up(
    state_dir: Path,
    console: Console,
    port: int | None = None,
    run: bool = True,
    parameters: dict[str, Any] | None = None,
    timeout: float = 3600,
) -> int:
    """Bring the stack up and (unless ``run`` is false) run the platform deployment."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from blueprint.loader import load_spec
    from platformctl import automations
    from platformctl.targets import SANDBOX_ENV, save_sandbox_blocks
    from sandbox import control
    from sandbox.settings import SandboxSettings

    state_dir = state_dir.resolve()
    state = read_state(state_dir)
    steps = Steps(console)
    spec = load_spec(SANDBOX_ENV)  # a bad spec stops here, before anything starts
    with steps.step("prefect server"):
        detail = start_server(state_dir, state, port)
    console.print(f"{'':<30}{detail}", markup=False)
    settings = {PREFECT_API_URL: state["api_url"], PREFECT_HOME: state["prefect_home"]}
    with temporary_settings(updates=settings):
        with steps.step("sandbox and blocks"):
            sandbox_dir = control.default_state_dir()
            _, sandbox = control.up(sandbox_dir, SandboxSettings())
            save_sandbox_blocks(spec, sandbox)
            state["sandbox_dir"] = str(sandbox_dir.resolve())
            write_state(state_dir, state)
        with steps.step("block types registered"):
            _run([prefect_bin(), "block", "register", "-m", "blocks"], client_env(state), "block")
        with steps.step("work pool", WORK_POOL):
            asyncio.run(ensure_work_pool())
        with steps.step("deployments", f"prefect deploy --name '{DEPLOYMENTS}'"):
            _run(
                [prefect_bin(), "--no-prompt", "deploy", "--name", DEPLOYMENTS],
                client_env(state),
                "prefect deploy",
            )
        with steps.step("drift automation"):
            applied = asyncio.run(automations.apply(spec))
        console.print(f"{'':<30}{applied['automation']}: {applied['done']}", markup=False)
        with steps.step("worker"):
            detail = start_worker(state_dir, state)
        console.print(f"{'':<30}{detail}", markup=False)
        state["timings"] = steps.timings
        write_state(state_dir, state)
        console.print(f"Prefect UI: {state['ui_url']}", markup=False)
        if not run:
            return 0
        outcome = asyncio.run(run_and_follow(state, parameters or {}, console, timeout))
    state["last_run"] = outcome
    write_state(state_dir, state)
    console.print("stop everything: make down (platformctl stack down)", markup=False)
    return 0 if outcome["state"] == "Completed" else 1


async def run_and_follow(
    state: dict[str, Any], parameters: dict[str, Any], console: Console, timeout: float
) -> dict[str, Any]:
    from prefect import get_client
    from prefect.deployments import run_deployment

    from platformctl.watch import follow, render_summary, summary

    began = time.monotonic()
    flow_run = await run_deployment(
        PLATFORM_DEPLOYMENT, parameters=parameters, timeout=0, tags=["platformctl"]
    )
    console.print(f"run {flow_run.name} of {PLATFORM_DEPLOYMENT} created", markup=False)
    async with get_client() as client:
        tree = await follow(client, flow_run.id, console, timeout)
    data = summary(tree, state["ui_url"])
    data["wall_seconds"] = round(time.monotonic() - began, 1)  # includes the worker's pickup
    render_summary(data, console)
    return data


def down(state_dir: Path, console: Console) -> bool:
    """Stop the worker, the server and the sandbox; returns whether anything ran."""
    from sandbox import control

    state_dir = state_dir.resolve()
    state = read_state(state_dir)
    if not state:
        return False
    for name in ("worker", "server"):  # the worker first: it reports to the server
        process = state.get(name)
        if process:
            how = stop_group(process["pid"], process.get("started"))
            console.print(f"{name} {how}", markup=False)
    if state.get("sandbox_dir"):
        stopped = control.down(Path(state["sandbox_dir"]))
        console.print("sandbox stopped" if stopped else "no sandbox was running", markup=False)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return True


def status(state_dir: Path) -> dict[str, Any]:
    state = read_state(state_dir.resolve())
    for name in ("server", "worker"):
        if state.get(name):
            state[name]["alive"] = running(state[name])
    return state
