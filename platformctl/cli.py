"""``platformctl``: the command users run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from blueprint.catalogue import load_catalogue
from blueprint.errors import SpecError
from blueprint.loader import load_spec
from blueprint.plan import plan as make_plan

app = typer.Typer(
    help="Bootstrap the platform as Prefect flows; plan it first.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EnvOption = Annotated[
    str | None,
    typer.Option("--env", help="Environment overlay in config/environments/ (e.g. sandbox)"),
]
SpecOption = Annotated[
    Path | None,
    typer.Option("--spec", help="A YAML file merged over the defaults and the environment"),
]


@app.callback()
def root() -> None:
    """Bootstrap the platform as Prefect flows; plan it first."""


def fail(error: SpecError) -> None:
    """Report every problem on its own line and exit 2, before anything is touched."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for problem in error.problems:
        err.print(f"error: {problem}", markup=False)
    raise typer.Exit(2)


@app.command()
def plan(
    env: EnvOption = None,
    spec: SpecOption = None,
    profile: Annotated[
        str, typer.Option(help="Which end of the guide's duration ranges: min, mid or max")
    ] = "max",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    check_account: Annotated[
        bool,
        typer.Option(
            "--check-account",
            help="Read the account (read-only): the principal, each quota's limit and usage; "
            "exit 1 when one is short",
        ),
    ] = False,
) -> None:
    """Show what a run will do, when each component starts, the critical path, and what it
    needs from the AWS account."""
    from blueprint.quotas import quota_needs

    checked = None
    try:
        if profile not in ("min", "mid", "max"):
            raise SpecError([f"--profile: {profile!r} is not one of min, mid, max"])
        platform_spec = load_spec(env, spec)
        result = make_plan(platform_spec, load_catalogue(), profile)  # type: ignore[arg-type]
        needs = quota_needs(platform_spec)
        if check_account:
            from platformctl.account import check

            quiet_prefect()

            checked = check(platform_spec)
    except SpecError as exc:
        fail(exc)
    from platformctl.account import principal_source

    if as_json:
        document = result.to_json()
        document["account"] = {
            "region": platform_spec.platform.region,
            "runs_as": principal_source(platform_spec),
            "quotas": [n.to_json() for n in needs],
        }
        if checked is not None:
            document["account_check"] = checked.to_json()
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from platformctl.account import render_check, render_needs
        from platformctl.plan_view import render_plan

        console = Console(highlight=False)
        render_plan(result, console)
        if checked is None:
            render_needs(needs, platform_spec, console)
        else:
            render_check(checked, console)
    if checked is not None and checked.short:
        raise typer.Exit(1)


@app.command("iam-policy")
def iam_policy(
    env: EnvOption = None,
    spec: SpecOption = None,
    account: Annotated[
        str | None,
        typer.Option(
            "--account",
            help="The AWS account ID (default: the running sandbox's, or the default "
            "credential chain's; a ${AWS::AccountId} placeholder without credentials)",
        ),
    ] = None,
) -> None:
    """Print the least-privilege IAM policy (JSON) the runner needs: every AWS operation
    the product calls, on the spec's own resources."""
    from platformctl.account import account_id
    from tasks.aws.permissions import iam_policy as make_policy

    try:
        platform_spec = load_spec(env, spec)
        account_or_placeholder, note = account_id(platform_spec, account)
    except SpecError as exc:
        fail(exc)
    if note:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"note: {note}", markup=False)
    json.dump(make_policy(platform_spec, account_or_placeholder), sys.stdout, indent=2)
    sys.stdout.write("\n")


@app.command()
def up(
    env: Annotated[
        str, typer.Option("--env", help="Environment overlay in config/environments/")
    ] = "sandbox",
    spec: SpecOption = None,
    workflows: Annotated[
        str | None,
        typer.Option(help="Comma-separated workflows to run (default: all that exist)"),
    ] = None,
    time_scale: Annotated[
        float | None,
        typer.Option(
            help="Sandbox only: wall seconds per guide minute for latency, polls and budgets"
        ),
    ] = None,
) -> None:
    """Run the platform flows in this process, with progress and a report in .runs/ (no
    server or worker needed; `platformctl stack up` runs it as a deployment)."""
    quiet_prefect()
    from platformctl.targets import prepare_target

    console = Console(highlight=False, soft_wrap=True)  # CI logs: one line per message
    try:
        platform_spec = load_spec(env, spec)
        catalogue = load_catalogue()
        chosen = parse_workflows(workflows)
        spec = spec.resolve() if spec else None  # flows may run elsewhere: absolute path
        prepare_target(platform_spec, time_scale, console)
        # The run checks them too; here a missing input is one line, before any flow runs.
        from tasks.inputs import preflight

        preflight(platform_spec, [c for c in catalogue.components if c.workflow in chosen])
    except SpecError as exc:
        fail(exc)
    use_tools()
    from platformctl.run import execute

    raise typer.Exit(execute(platform_spec, env, spec, chosen, console))


def quiet_prefect() -> None:
    # Prefect's own run logs stay in the Prefect UI/API; the console shows our progress.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # A temporary Prefect server must not try to reach the internet.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # ... and may take longer than Prefect's 20 s to start on a busy machine (seen on 2
    # cores with the sandbox and helm running).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def use_tools() -> None:
    """Component tasks find helm through PLATFORM_HELM (installed into .tools/bin once)."""
    from sandbox.tools import ensure_tools

    os.environ.setdefault("PLATFORM_HELM", str(ensure_tools()["helm"]))


def parse_workflows(text: str | None) -> list[str]:
    """``--workflows a,b``: known names in the guide's order; all of them when empty."""
    from blueprint.spec import WORKFLOWS

    if not text:
        return list(WORKFLOWS)
    chosen = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in chosen if w not in WORKFLOWS]
    if unknown:
        raise SpecError(
            [f"--workflows: unknown {', '.join(unknown)}; known: {', '.join(WORKFLOWS)}"]
        )
    return [w for w in WORKFLOWS if w in chosen]


@app.command()
def inventory(
    env: EnvOption = None,
    spec: SpecOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Everything the platform owns in its target: AWS resources by tag, helm releases and
    namespaces in the cluster."""
    from blueprint.pace import Pace
    from platformctl.targets import existing_target
    from tasks.context import RunContext
    from tasks.inventory import inventory as collect

    quiet_prefect()
    try:
        platform_spec = load_spec(env, spec)
        target = existing_target(platform_spec)
    except SpecError as exc:
        fail(exc)
    use_tools()
    found = collect(RunContext(platform_spec, target, Pace()))
    if as_json:
        json.dump(found, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    from platformctl.inventory_view import render_inventory

    render_inventory(found, Console(highlight=False))


@app.command()
def unlock(
    env: EnvOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Also on a served Prefect (PREFECT_API_URL), which frees them itself"
        ),
    ] = False,
) -> None:
    """Release the environment's lock and helm slots that a run which was killed still
    holds on Prefect's temporary server (like terraform force-unlock); only when no run of
    the environment is going on."""
    import asyncio

    from tasks.locks import unlock as release

    quiet_prefect()
    try:
        if env is None:
            raise SpecError(["--env: name the environment to unlock"])
        load_spec(env)  # a known environment
        if os.environ.get("PREFECT_API_URL") and not force:
            raise SpecError(
                [
                    "a served Prefect frees the slots of a run that was killed once their "
                    "lease expires (60 s, checked every 15 s); releasing them now as well "
                    "would release them twice. --force does it anyway"
                ]
            )
    except SpecError as exc:
        fail(exc)
    released = asyncio.run(release(env))
    console = Console(highlight=False)
    for name, slots in released.items():
        console.print(f"{name}: released {slots} slot{'s' if slots != 1 else ''}")
    if not released:
        console.print(f"environment {env} has no locks yet")


@app.command("automations")
def automations_command(env: EnvOption = None, spec: SpecOption = None) -> None:
    """Create or update the environment's drift automation in the Prefect API: a
    notification, and a remediation run where the spec says so."""
    import asyncio

    from platformctl import automations

    quiet_prefect()
    try:
        if env is None:
            raise SpecError(["--env: name the environment whose automation to apply"])
        applied = asyncio.run(automations.apply(load_spec(env, spec)))
    except SpecError as exc:
        fail(exc)
    actions = ", ".join(applied["actions"]) or "no actions"
    Console(highlight=False).print(f"{applied['automation']}: {applied['done']} ({actions})")


def _add_subcommands() -> None:
    from platformctl.sandbox_cli import app as sandbox_app
    from platformctl.stack_cli import app as stack_app

    app.add_typer(sandbox_app, name="sandbox")
    app.add_typer(stack_app, name="stack")


_add_subcommands()


def main() -> None:
    app()
