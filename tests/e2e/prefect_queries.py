"""What the deployment tests read back from a Prefect server, as plain data."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.objects import TaskRun
from prefect.client.schemas.sorting import ArtifactSort


async def deployments() -> list[dict[str, Any]]:
    async with get_client() as client:
        found = await client.read_deployments()
        flows = {f.id: f.name for f in await client.read_flows()}
        return [
            {
                "name": d.name,
                "flow": flows[d.flow_id],
                "work_pool": d.work_pool_name,
                "crons": [getattr(s.schedule, "cron", None) for s in d.schedules],
                "parameter_schema": d.parameter_openapi_schema,
                "job_variables": d.job_variables,
            }
            for d in found
        ]


async def task_runs(flow_run_id: str) -> list[TaskRun]:
    """The task runs of a flow run and of its subflows."""
    async with get_client() as client:
        subflows = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
            )
        )
        ids = [flow_run_id, *(str(s.id) for s in subflows)]
        return await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=200
        )


async def task_run_names(flow_run_id: str) -> list[str]:
    return sorted(t.name for t in await task_runs(flow_run_id))


async def task_run_messages(flow_run_id: str) -> dict[str, str]:
    """Each task run's name and its state's message (a failure's cause)."""
    return {
        t.name: (t.state.message or "") if t.state else "" for t in await task_runs(flow_run_id)
    }


async def blocks() -> dict[str, Any]:
    async with get_client() as client:
        documents = await client.read_block_documents()
        names = sorted(f"{d.block_type.slug}/{d.name}" for d in documents if d.block_type)
        target = await client.read_block_document_by_name("sandbox", "platform-target")
        references = sorted(
            f"{ref['block_document']['block_type']['slug']}/{ref['block_document']['name']}"
            for ref in target.block_document_references.values()
        )
        return {"names": names, "target_refers_to": references}


async def artifact_table(key: str) -> list[dict[str, Any]]:
    """The rows of the newest table artifact with ``key``."""
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
        assert found, f"no artifact {key!r}"
        data = found[0].data
        return json.loads(data) if isinstance(data, str) else data


RUN_NAME = re.compile(r"^(?P<what>.+)-(?P<stamp>\d{8}-\d{6})$")


def unstamped(name: str) -> str:
    """A flow run's name without its UTC time (``bootstrap-sandbox-20261203-093000``)."""
    matched = RUN_NAME.match(name)
    assert matched, f"run name {name!r} has no time"
    return matched["what"]


async def final_state(flow_run_id: str, timeout: float = 60) -> str:
    """The run's state name once it is final (a cancelled run ends when its worker stops
    it); the current one after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with get_client() as client:
        while True:
            run = await client.read_flow_run(UUID(flow_run_id))
            if run.state is not None and run.state.is_final():
                return run.state.name
            if asyncio.get_running_loop().time() > deadline:
                return run.state.name if run.state else "none"
            await asyncio.sleep(0.5)
