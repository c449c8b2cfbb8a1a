"""Follow a deployment's flow run through the Prefect API: one line per workflow or
component that changes state, then a summary of the run tree (what the UI shows)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.objects import FlowRun, TaskRun
from rich.console import Console
from rich.table import Table

POLL_SECONDS = 1.0
QUIET_STATES = ("Pending", "Scheduled")


@dataclass
class RunTree:
    """A flow run, its subflow runs and the task runs of both, as last read."""

    root: FlowRun
    subflows: list[FlowRun] = field(default_factory=list)
    tasks: list[TaskRun] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)

    def flow_runs(self) -> list[FlowRun]:
        return [self.root, *self.subflows]


async def read_tree(client: PrefectClient, flow_run_id: UUID) -> RunTree:
    root = await client.read_flow_run(flow_run_id)
    subflows = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
        )
    )
    ids = [root.id, *(s.id for s in subflows)]
    tasks = await client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=200
    )
    # A subflow run has a stand-in task run in its parent: the subflow itself is shown.
    stand_ins = {s.parent_task_run_id for s in subflows}
    components = [t for t in tasks if t.id not in stand_ins]
    return RunTree(root, sorted(subflows, key=lambda r: r.expected_start_time or 0), components)


def _state(run: FlowRun | TaskRun) -> str:
    return run.state.name if run.state else "Unknown"


def _seconds(run: FlowRun | TaskRun) -> float | None:
    return run.total_run_time.total_seconds() if run.state and run.state.is_final() else None


async def follow(
    client: PrefectClient, flow_run_id: UUID, console: Console, timeout: float
) -> RunTree:
    """Print state changes until the run is final (or ``timeout`` passes); the final tree."""
    seen: dict[UUID, str] = {}
    workflow_of: dict[UUID, str] = {}
    deadline = time.monotonic() + timeout
    while True:
        tree = await read_tree(client, flow_run_id)
        for run in tree.subflows:
            workflow_of[run.id] = run.name
        changed: list[tuple[str, str, FlowRun | TaskRun]] = []
        for run in tree.flow_runs():
            changed.append((run.name, "", run))
        for task in tree.tasks:
            changed.append((workflow_of.get(task.flow_run_id, tree.root.name), task.name, task))
        for where, name, run in changed:
            state = _state(run)
            if name and state in QUIET_STATES:
                continue  # a task run is named once it starts; its creation says little
            if seen.get(run.id) != state:
                seen[run.id] = state
                took = _seconds(run)
                suffix = f" in {took:.1f}s" if took is not None else ""
                console.print(f"{where:>24} {name:<28} {state}{suffix}", markup=False)
        if tree.root.state and tree.root.state.is_final():
            tree.artifacts = await artifacts_of(client, tree)
            return tree
        if time.monotonic() > deadline:
            raise TimeoutError(f"flow run {flow_run_id} not finished after {timeout:.0f}s")
        await asyncio.sleep(POLL_SECONDS)


async def artifacts_of(client: PrefectClient, tree: RunTree) -> list[str]:
    ids = [r.id for r in tree.flow_runs()]
    found = await client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))
    )
    return sorted({a.key for a in found if a.key})


def summary(tree: RunTree, ui_url: str) -> dict[str, Any]:
    """The run tree as data: the root's outcome, each subflow's and its tasks' counts."""
    by_flow: dict[UUID, list[TaskRun]] = {}
    for task in tree.tasks:
        by_flow.setdefault(task.flow_run_id, []).append(task)
    workflows = []
    for run in tree.subflows:
        tasks = by_flow.get(run.id, [])
        workflows.append(
            {
                "name": run.name,
                "state": _state(run),
                "seconds": _seconds(run),
                "tasks": len(tasks),
                "tasks_completed": sum(1 for t in tasks if t.state and t.state.is_completed()),
            }
        )
    return {
        "flow_run": tree.root.name,
        "flow_run_id": str(tree.root.id),
        "state": _state(tree.root),
        "message": tree.root.state.message if tree.root.state else None,
        "seconds": _seconds(tree.root),
        "workflows": workflows,
        "artifacts": tree.artifacts,
        "url": f"{ui_url}/runs/flow-run/{tree.root.id}",
    }


def render_summary(data: dict[str, Any], console: Console) -> None:
    table = Table(title=f"{data['flow_run']}: {data['state']}", title_justify="left")
    for column in ("subflow run", "state", "seconds", "tasks completed"):
        table.add_column(column)
    for row in data["workflows"]:
        seconds = f"{row['seconds']:.1f}" if row["seconds"] is not None else ""
        table.add_row(
            row["name"], row["state"], seconds, f"{row['tasks_completed']}/{row['tasks']}"
        )
    console.print(table)
    if data["seconds"] is not None:
        console.print(f"run {data['state']} in {data['seconds']:.1f}s", markup=False)
    if data["state"] != "Completed" and data["message"]:
        console.print(data["message"], markup=False)
    console.print(f"artifacts: {', '.join(data['artifacts']) or 'none'}", markup=False)
    console.print(f"run in the UI: {data['url']}", markup=False)
