"""``platformctl sandbox ...``: start, inspect and stop the local sandbox; inject faults."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sandbox import control
from sandbox.control import default_state_dir
from sandbox.settings import Fault, SandboxSettings, SettingsError

app = typer.Typer(help="The local sandbox: AWS API, Kubernetes API, charts, helm.")
fault_app = typer.Typer(help="Inject faults into the running sandbox.")
app.add_typer(fault_app, name="fault")

DirOption = Annotated[Path | None, typer.Option("--dir", help="State folder (default: ./.sandbox)")]
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _dir(value: Path | None) -> Path:
    return value or default_state_dir()


def _fail(message: str, code: int = 1) -> None:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def _settings(
    settings_file: Path | None, time_scale: float | None, faults: list[str]
) -> SandboxSettings:
    try:
        settings = SandboxSettings.from_file(settings_file) if settings_file else SandboxSettings()
        if time_scale is not None:
            if time_scale < 0:
                raise SettingsError("--time-scale must be >= 0")
            settings.latency.time_scale = time_scale
        for text in faults:
            settings.faults.add(Fault.parse(text))
    except (OSError, SettingsError, TypeError) as exc:
        _fail(str(exc), 2)
    return settings


def print_endpoints(state: dict) -> None:
    console.print(f"  AWS API         {state['aws_endpoint_url']}  (region {state['aws_region']})")
    console.print(f"  Kubernetes API  {state['kube_url']}  (kubeconfig {state['kubeconfig']})")
    console.print(f"  charts          {state['chart_repository']}")
    console.print(f"  control         {state['control_url']}")


@app.command()
def up(
    state_dir: DirOption = None,
    time_scale: Annotated[
        float | None,
        typer.Option(help="Wall seconds per guide minute (e.g. 0.2); 0: everything instant"),
    ] = None,
    settings_file: Annotated[
        Path | None, typer.Option("--settings", help="YAML: time_scale, latency_minutes, faults")
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Fault NAME[:TARGET[:COUNT]], repeatable (see 'sandbox fault names')"),
    ] = None,
    blocks: Annotated[
        bool | None,
        typer.Option(
            "--blocks/--no-blocks",
            help="Save the sandbox's Prefect blocks (platform-target/sandbox and the blocks it "
            "refers to) to the Prefect API; default: when PREFECT_API_URL names one",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the sandbox on 127.0.0.1 (does nothing if it already runs) and save its blocks."""
    settings = _settings(settings_file, time_scale, fault or [])
    try:
        started, state = control.up(_dir(state_dir), settings)
    except control.SandboxError as exc:
        _fail(str(exc))
    if not started:
        console.print(f"sandbox already running (pid {state['pid']}); nothing changed")
    else:
        took = state["startup_seconds"]["total"]
        console.print(f"sandbox up in {took:.2f}s (pid {state['pid']})")
    print_endpoints(state)
    console.print(f"  for a shell:    source {_dir(state_dir).resolve() / 'target.env'}")
    if blocks is None:
        # Without a server, saving would start a temporary one (about 10 s) for blocks that
        # `platformctl up` and `platformctl stack up` save anyway.
        blocks = bool(os.environ.get("PREFECT_API_URL"))
    if blocks:
        saved = save_blocks(state)
        console.print(f"  Prefect blocks  {', '.join(saved)}")
    else:
        console.print("  Prefect blocks  not saved (no PREFECT_API_URL; --blocks saves them)")


def save_blocks(state: dict) -> list[str]:
    """Saves the sandbox environment's blocks; returns their slugs."""
    from blueprint.loader import load_spec
    from blueprint.spec import dns_token_block
    from platformctl.targets import SANDBOX_ENV, save_sandbox_blocks

    spec = load_spec(SANDBOX_ENV)
    target = save_sandbox_blocks(spec, state)
    name = target.environment
    saved = [f"platform-target/{name}", f"aws-credentials/{name}"]
    if target.cluster_config is not None:
        saved.append(f"kubernetes-cluster-config/{name}")
    return [*saved, f"secret/{dns_token_block(spec)}"]


@app.command()
def down(state_dir: DirOption = None) -> None:
    """Stop every process 'up' started; no listener is left behind."""
    try:
        state = control.down(_dir(state_dir))
    except control.SandboxError as exc:
        _fail(str(exc))
    console.print("sandbox stopped" if state else "no sandbox was running")


@app.command()
def status(
    state_dir: DirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """What runs where, whether it answers, and the latency and faults in force."""
    info = control.status(_dir(state_dir))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        if info is None:
            raise typer.Exit(1)
        return
    if info is None:
        console.print("no sandbox running")
        raise typer.Exit(1)
    console.print(f"sandbox running (pid {info['pid']})")
    print_endpoints(info)
    unhealthy = [k for k, ok in info["health"].items() if not ok]
    console.print("  health          " + ("all answer" if not unhealthy else f"DOWN: {unhealthy}"))
    settings = info["settings"]
    console.print(f"  time scale      {settings['time_scale']} s per guide minute")
    faults = ", ".join(f"{f['name']}:{f['target']}" for f in settings["faults"]) or "none"
    console.print(f"  faults          {faults}")


def _running_state(state_dir: Path | None) -> dict:
    state = control.running(_dir(state_dir))
    if not state:
        _fail("no sandbox running (platformctl sandbox up)")
    return state


@fault_app.command("add")
def fault_add(
    name: Annotated[str, typer.Argument(help="Fault name (see 'sandbox fault names')")],
    target: Annotated[str, typer.Option(help="What it hits (fnmatch pattern)")] = "*",
    count: Annotated[
        int | None, typer.Option(help="Fire this many times (default: always)")
    ] = None,
    state_dir: DirOption = None,
) -> None:
    """Inject a fault into the running sandbox."""
    try:
        Fault(name, target, count)
        faults = control.control_call(
            _running_state(state_dir),
            "POST",
            "/faults",
            {"name": name, "target": target, "count": count},
        )
    except (SettingsError, control.SandboxError) as exc:
        _fail(str(exc), 2)
    console.print(f"faults in force: {faults}")


@fault_app.command("clear")
def fault_clear(
    name: Annotated[str | None, typer.Argument(help="Only this fault")] = None,
    state_dir: DirOption = None,
) -> None:
    """Remove faults (all, or those of one name)."""
    query = f"?name={name}" if name else ""
    faults = control.control_call(_running_state(state_dir), "DELETE", f"/faults{query}")
    console.print(f"faults in force: {faults}")


@fault_app.command("names")
def fault_names() -> None:
    """The faults the sandbox can inject."""
    from sandbox.settings import FAULTS

    for name, what in FAULTS.items():
        console.print(f"{name:22} {what}")
