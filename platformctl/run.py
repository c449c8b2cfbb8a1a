"""``platformctl up``: run the platform flows in this process, show progress, write a report.

Prefect runs them against the server in ``PREFECT_API_URL``, or an ephemeral one when it
is unset. With ``--env sandbox`` the sandbox is started first when none runs, and left up
afterwards for inspection.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from blueprint.catalogue import load_catalogue
from blueprint.plan import resolve_needs
from blueprint.spec import PlatformSpec
from tasks.progress import Board, ComponentRun

STATUS_STYLE = {
    "pending": "dim",
    "running": "yellow",
    "completed": "green",
    "failed": "bold red",
    "skipped": "magenta",
}


def runs_dir() -> Path:
    return Path.cwd() / ".runs"


def progress_table(board: Board, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("component", "workflow", "status", "seconds", "detail"):
        table.add_column(column)
    for run in list(board.runs.values()):
        seconds = f"{run.duration_s:.1f}" if run.duration_s is not None else ""
        style = STATUS_STYLE.get(run.status, "")
        table.add_row(run.name, run.workflow, f"[{style}]{run.status}[/]", seconds, run.detail[:80])
    return table


class Progress:
    """Live table on a terminal; one line per change otherwise (CI logs)."""

    def __init__(self, board: Board, console: Console, title: str):
        self.board, self.console, self.title = board, console, title
        self.live: Live | None = None
        if console.is_terminal:
            self.live = Live(
                progress_table(board, title), console=console, refresh_per_second=4, transient=False
            )
        board.listen(self._changed)

    def _changed(self, run: ComponentRun) -> None:
        if self.live is not None:
            self.live.update(progress_table(self.board, self.title))
        elif run.status != "pending":
            took = f" in {run.duration_s:.1f}s" if run.status in ("completed", "failed") else ""
            detail = f": {run.detail}" if run.status in ("failed", "skipped") else ""
            self.console.print(
                f"{run.workflow:>14} {run.name:<28} {run.status}{took}{detail}", markup=False
            )

    def __enter__(self) -> Progress:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)


def scheduling(board: Board, needs: dict[str, dict[str, str]]) -> dict[str, Any]:
    """How late each component followed its last need (a component with no need in the
    run: the run's first start): ``submitted`` is when the run noticed and submitted its
    task, ``started`` when its work began (Prefect's task start included). Each with
    every component's delay and the median, p95 and max."""
    runs = {n: r for n, r in board.runs.items() if r.started_at is not None}
    if not runs:
        return {}
    first = min(r.started_at for r in runs.values() if r.started_at is not None)
    ready: dict[str, float] = {}
    for name in runs:
        done = [board.runs[n].finished_at for n in needs.get(name, {}) if n in board.runs]
        if None not in done:
            ready[name] = max([f for f in done if f is not None], default=first)

    def delays(moment: str) -> dict[str, Any]:
        at = {n: getattr(runs[n], f"{moment}_at") for n in ready}
        return _delays({n: at[n] - t for n, t in ready.items() if at[n] is not None})

    return {"submitted": delays("submitted"), "started": delays("started")}


def _delays(delays: dict[str, float]) -> dict[str, Any]:
    known = {n: round(max(0.0, d), 4) for n, d in delays.items()}
    ordered = sorted(known.values())
    if not ordered:
        return {"delays_s": {}}
    return {
        "delays_s": known,
        "median_s": round(statistics.median(ordered), 4),
        "p95_s": ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)],
        "max_s": ordered[-1],
    }


def write_report(
    run_id: str,
    board: Board,
    status: str,
    wall_s: float,
    started: float,
    extra: dict[str, Any],
) -> Path:
    folder = runs_dir() / run_id
    folder.mkdir(parents=True, exist_ok=True)
    report = {
        "run_id": run_id,
        "status": status,
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(),
        "wall_s": round(wall_s, 3),
        "components": [r.as_dict() for r in board.runs.values()],
        **extra,
    }
    path = folder / "report.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


def execute(
    spec: PlatformSpec,
    environment: str,
    spec_file: Path | None,
    workflows: list[str],
    console: Console,
) -> int:
    """Run the chosen workflows; returns the process exit status."""
    from prefect.client.schemas.objects import StateType

    from flows.platform import bootstrap_platform
    from tasks.progress import board

    board.reset()
    started = time.time()
    title = f"platform {spec.platform.name} / {spec.platform.environment}"
    with Progress(board, console, title):
        state = asyncio.run(
            bootstrap_platform(
                environment=environment,
                workflows=workflows,  # type: ignore[arg-type]
                spec_file=str(spec_file) if spec_file else None,
                return_state=True,
            )
        )
    wall = time.time() - started
    ok = state.type == StateType.COMPLETED
    run_id = str(state.state_details.flow_run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%S"))
    extra: dict[str, Any] = {
        "environment": spec.platform.environment,
        "workflows": workflows,
        "scheduling": scheduling(board, resolve_needs(spec, load_catalogue())),
    }
    if ok:
        extra["checks"] = state.result().get("foundation", {}).get("checks", [])
    else:
        extra["error"] = str(state.message or state.name)
    report = write_report(run_id, board, "completed" if ok else "failed", wall, started, extra)
    summarize(board, ok, wall, extra, report, console)
    return 0 if ok else 1


def summarize(
    board: Board, ok: bool, wall: float, extra: dict[str, Any], report: Path, console: Console
) -> None:
    counts: dict[str, int] = {}
    for run in board.runs.values():
        counts[run.status] = counts.get(run.status, 0) + 1
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    for check in extra.get("checks", []):
        mark = "passed" if check["passed"] else "FAILED"
        console.print(
            f"check {check['name']}: {mark} (value {check['value']}, expected {check['expected']})",
            markup=False,
        )
    started = extra.get("scheduling", {}).get("started", {})
    if "median_s" in started:
        console.print(
            f"components started {started['median_s'] * 1000:.0f} ms (median), "
            f"{started['max_s'] * 1000:.0f} ms (max) after their last need finished",
            markup=False,
        )
    verdict = "[green]succeeded[/]" if ok else "[bold red]failed[/]"
    console.print(f"run {verdict} in {wall:.1f}s: {parts}")
    if not ok:
        console.print(extra.get("error", ""), markup=False)
    console.print(f"report: {report}")
    sys.stdout.flush()
