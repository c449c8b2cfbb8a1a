"""How each kind of component is submitted as a Prefect task: which task, with what
arguments, and under which options.

Foundation kinds pass results along (the network and roles to the cluster, the cluster to
node groups and add-ons); the other kinds read what they need from the spec and the
target. Every component's task run is named after it, tagged with its workflow and kind,
and bounded by its catalogue timeout (gates: each attempt bounded, retried within the
spec's budget).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from prefect import Task
from prefect.futures import PrefectFuture

from blueprint.catalogue import Component
from blueprint.units import duration_seconds
from tasks import foundation as f
from tasks import platform as p
from tasks.context import RunContext
from tasks.gates import ATTEMPT_SECONDS, retry_policy

# What a component's task gets: the task and its arguments, from the run context, the
# component, what its needs returned (futures or values) and the namespaces by component.
Call = Callable[[RunContext, Component, Mapping[str, Any], dict[str, str]], tuple[Task, tuple]]

CALLS: dict[str, Call] = {
    "vpc": lambda ctx, c, got, ns: (f.converge_vpc, (ctx, c.name)),
    "iam": lambda ctx, c, got, ns: (f.converge_iam, (ctx, c.name)),
    "eks-cluster": lambda ctx, c, got, ns: (f.converge_eks, (ctx, got["vpc"], got["iam"], c.name)),
    "node-groups": lambda ctx, c, got, ns: (
        f.converge_node_groups,
        (ctx, got["vpc"], got["iam"], got["eks"], c.name),
    ),
    "eks-addon": lambda ctx, c, got, ns: (f.converge_addon, (ctx, c.addon, got["eks"], c.name)),
    "storage-class": lambda ctx, c, got, ns: (f.converge_storage_class, (ctx, c.name)),
    "gate": lambda ctx, c, got, ns: (p.check_gate, (ctx, c)),
    "helm-release": lambda ctx, c, got, ns: (p.converge_release, (ctx, c, ns)),
    "s3-bucket": lambda ctx, c, got, ns: (p.converge_bucket, (ctx, c)),
    "chart-crds": lambda ctx, c, got, ns: (p.converge_chart_crds, (ctx, c)),
}


class _BlockingCallsAreBounded(logging.Filter):
    """Prefect warns, for every sync task with a timeout that runs in a worker thread, that
    a blocking call delays the timeout until it returns. Every blocking call here has a
    bound of its own (docs/running-safely.md), so the warning on each component's task run
    tells nothing new."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "but the task is running in a worker thread" not in str(record.msg)


logging.getLogger("prefect.task_runs").addFilter(_BlockingCallsAreBounded())


def budget_seconds(ctx: RunContext, component: Component) -> float:
    """A component's task timeout: its catalogue timeout at the run's pace."""
    assert component.timeout is not None, component.name
    return ctx.pace.budget(float(duration_seconds(component.timeout)))


def component_tags(component: Component) -> list[str]:
    return [f"workflow:{component.workflow}", f"kind:{component.kind}"]


def task_options(ctx: RunContext, component: Component) -> dict[str, Any]:
    """Name, tags and time bounds of a component's task run."""
    options: dict[str, Any] = {"task_run_name": component.name, "tags": component_tags(component)}
    if component.kind == "gate":
        assert component.gate is not None
        gate = getattr(ctx.spec.gates, component.gate)
        options.update(retry_policy(gate, ctx.pace), timeout_seconds=ATTEMPT_SECONDS)
    else:
        options["timeout_seconds"] = budget_seconds(ctx, component)
    return options


def submit(
    ctx: RunContext,
    component: Component,
    got: Mapping[str, Any],
    namespaces: dict[str, str],
    upstream: list[PrefectFuture],
) -> PrefectFuture:
    """Submit ``component``'s task; ``upstream`` (its needs' futures, all done) only draws
    the dependency edges in the UI's graph."""
    task, args = CALLS[component.kind](ctx, component, got, namespaces)
    return task.with_options(**task_options(ctx, component)).submit(*args, wait_for=upstream)
