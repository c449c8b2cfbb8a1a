"""``platformctl``: the command users run."""

from __future__ import annotations

import json
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
) -> None:
    """Show what a run will do, when each component starts, and the critical path."""
    try:
        if profile not in ("min", "mid", "max"):
            raise SpecError([f"--profile: {profile!r} is not one of min, mid, max"])
        result = make_plan(load_spec(env, spec), load_catalogue(), profile)  # type: ignore[arg-type]
    except SpecError as exc:
        fail(exc)
    if as_json:
        json.dump(result.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    from platformctl.plan_view import render_plan

    render_plan(result, Console(highlight=False))


def main() -> None:
    app()
