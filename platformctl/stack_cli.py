"""``platformctl stack ...``: a Prefect server, the sandbox, deployments and a worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from platformctl import stack

app = typer.Typer(
    help="The whole experience on this machine: Prefect server and UI, sandbox, "
    "deployments, worker, and a run of the platform deployment."
)
DirOption = Annotated[Path | None, typer.Option("--dir", help="State folder (default: ./.stack)")]
console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _dir(value: Path | None) -> Path:
    return value or stack.default_state_dir()


@app.command()
def up(
    state_dir: DirOption = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port of the Prefect server and UI (default 4200, else a free one)"),
    ] = None,
    run: Annotated[
        bool, typer.Option(help="Run the platform deployment once everything is up")
    ] = True,
    workflows: Annotated[
        str | None,
        typer.Option(help="Comma-separated workflows for that run (default: all)"),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to follow the run")] = 3600,
) -> None:
    """Start (or reuse) everything, deploy, run the platform and summarize; leaves it up."""
    from blueprint.errors import SpecError
    from platformctl.cli import fail, parse_workflows

    parameters = {}
    try:
        if workflows:
            parameters["workflows"] = parse_workflows(workflows)
    except SpecError as exc:
        fail(exc)
    try:
        code = stack.up(_dir(state_dir), console, port, run, parameters, timeout)
    except SpecError as exc:
        fail(exc)
    except (stack.StackError, OSError, RuntimeError) as exc:
        err.print(f"error: {exc}", markup=False)
        err.print("what started is still up: platformctl stack down", markup=False)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@app.command()
def down(state_dir: DirOption = None) -> None:
    """Stop the worker, the Prefect server and the sandbox that 'up' started."""
    if not stack.down(_dir(state_dir), console):
        console.print("no stack was running")


@app.command()
def status(
    state_dir: DirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """What runs (server, worker), where the UI is, and the last run's outcome."""
    state = stack.status(_dir(state_dir))
    if as_json:
        typer.echo(json.dumps(state, indent=2))
    elif not state:
        console.print("no stack running")
    else:
        for name in ("server", "worker"):
            process = state.get(name) or {}
            alive = "running" if process.get("alive") else "not running"
            console.print(f"{name:<8} {alive} (pid {process.get('pid')}, log {process.get('log')})")
        console.print(f"UI       {state.get('ui_url')}")
        last = state.get("last_run")
        if last:
            console.print(f"last run {last['flow_run']}: {last['state']} ({last['url']})")
    if not state:
        raise typer.Exit(1)
