"""``revalidate_platform``: compare the live platform with the spec, on a schedule or on
demand. Every component of the chosen workflows is checked read-only (``tasks.drift``),
every gate runs once and the foundation validation runs; the result is a table artifact,
a markdown summary and, when something drifted, a Prefect event. The run fails naming the
drifted components, unless ``remediate`` converges them (only them) back to the spec and
a second check finds them healthy.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.states import Completed
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from blueprint.catalogue import Catalogue, Component, load_catalogue
from blueprint.errors import SpecError
from blueprint.plan import resolve_needs
from flows.budget import budget, within
from flows.dag import ComponentsFailed, run_components
from flows.futures import result_of
from flows.launchers import submit
from flows.parameters import ENVIRONMENT, SPEC_FILE, TIME_SCALE, WORKFLOW_SUBSET, Workflow
from flows.platform import chosen_workflows
from flows.run_names import run_name
from flows.workflow import namespaces_of, run_context
from tasks.context import RunContext
from tasks.drift import (
    SEVERITY,
    VALIDATION,
    Finding,
    detect_drift,
    foundation_inputs,
    validation_finding,
)
from tasks.foundation import validate_foundation
from tasks.inputs import check_reach, preflight
from tasks.locks import environment_lock

REMEDIATE = Field(
    False,
    description="Converge the drifted components (only those) back to the spec, then check "
    "them again; off: report only",
)
EVENT_RESOURCE = "platform.{environment}"


class PlatformDrifted(RuntimeError):
    """The platform differs from its spec; the message names each component and why."""


@flow(
    name="revalidate_platform",
    flow_run_name=run_name("revalidate"),
    # checks wait on AWS, the cluster and helm: threads, not CPU
    task_runner=ThreadPoolTaskRunner(max_workers=16),
    description="Compare the live platform with the spec, report drift; remediate=true "
    "converges the drifted components only.",
)
async def revalidate_platform(
    environment: str = ENVIRONMENT,
    workflows: list[Workflow] | None = WORKFLOW_SUBSET,
    remediate: bool = REMEDIATE,
    time_scale: float | None = TIME_SCALE,
    spec_file: str | None = SPEC_FILE,
) -> dict[str, Any]:
    """Check every component of the chosen workflows against the spec; fails on drift that
    is left (all of it without ``remediate``)."""
    logger = get_run_logger()
    ctx = await run_context(environment, spec_file, time_scale)
    check_reach(ctx.spec, ctx.aws)  # a cluster in its worker's hands is checked from there
    catalogue = load_catalogue()
    chosen = chosen_workflows(workflows)
    components = [c for c in catalogue.components if c.workflow in chosen]
    namespaces = namespaces_of(ctx, catalogue)
    validate = "foundation" in chosen

    before = await check(ctx, components, namespaces, validate)
    drifted = [f for f in before.values() if not f.ok]
    for f in drifted:
        logger.warning(
            "drift: %s (%s, %s) %s: %s", f.component, f.workflow, f.kind, f.status, f.detail
        )
    if drifted:
        _event("platform.drift.detected", environment, before, remediate)

    after: dict[str, Finding] | None = None
    failures: dict[str, str] = {}
    if remediate:
        targets = [c for c in components if not before[c.name].ok]
        limit = budget(ctx, chosen).run
        # A scheduled remediation does not queue behind another run: the next slot re-checks.
        scheduled = _scheduled()
        async with environment_lock(
            environment, ctx.spec.runtime.helm_concurrency, limit, skip_if_busy=scheduled
        ) as held:
            if not held:
                await publish(environment, before, None, {})
                return Completed(
                    name="Skipped",
                    message=f"environment {environment} is busy with another run: "
                    "remediation skipped, drift reported",
                )
            async with within(limit, "remediation"):
                failures = await converge(ctx, catalogue, targets, before, namespaces)
        for name, error in failures.items():
            logger.error("remediation of %s failed: %s", name, error.splitlines()[0])
        # the validation looks at the whole foundation: checked again with the targets
        after = {**before, **(await check(ctx, targets, namespaces, validate) if drifted else {})}
        if drifted:
            healed = all(f.ok for f in after.values()) and not failures
            name = "platform.drift.remediated" if healed else "platform.drift.persists"
            _event(name, environment, after, remediate)

    await publish(environment, before, after, failures)
    left = [f for f in (after or before).values() if not f.ok]
    if left or failures:
        raise PlatformDrifted(drift_message(environment, left, failures))
    return {
        "environment": environment,
        "drifted": [f.component for f in drifted],
        "remediated": [f.component for f in drifted] if remediate else [],
        "findings": report_rows(before, after),
    }


def _scheduled() -> bool:
    """Whether this run was created by its deployment's schedule."""
    context = FlowRunContext.get()
    return bool(context and context.flow_run and context.flow_run.auto_scheduled)


def drift_message(environment: str, left: list[Finding], failures: dict[str, str]) -> str:
    names = ", ".join(f.component for f in left)
    lines = [f"platform {environment} " + (f"drifted: {names}" if left else "remediation failed")]
    lines += [f"{f.component}: {f.status}: {f.detail}" for f in left]
    lines += [f"remediation of {name} failed: {error}" for name, error in failures.items()]
    return "\n".join(lines)


async def check(
    ctx: RunContext, components: list[Component], namespaces: dict[str, str], validate: bool
) -> dict[str, Finding]:
    """One drift check per component, all at once, plus the foundation validation."""
    futures = {c.name: detect_drift.submit(ctx, c, namespaces) for c in components}
    validation = validate_foundation.submit(ctx) if validate else None
    found = await asyncio.gather(*(result_of(f) for f in futures.values()))
    findings = dict(zip(futures, found, strict=True))
    if validation is not None:
        findings[VALIDATION] = validation_finding(await result_of(validation))
    return findings


async def converge(
    ctx: RunContext,
    catalogue: Catalogue,
    targets: list[Component],
    found: dict[str, Finding],
    namespaces: dict[str, str],
) -> dict[str, str]:
    """Run the targets' own convergence tasks by their needs (a need found ok counts as met;
    one outside the checked workflows is checked now); returns the failures by component."""
    failures: dict[str, str] = {}
    runnable = []
    for component in targets:  # inputs a component needs outside the spec, e.g. a token
        try:
            preflight(ctx.spec, [component])
            runnable.append(component)
        except SpecError as exc:
            failures[component.name] = str(exc)
    if not runnable:
        return failures
    fed_kinds = ("eks-cluster", "node-groups", "eks-addon")
    inputs = (
        await asyncio.to_thread(foundation_inputs, ctx)
        if any(c.kind in fed_kinds for c in runnable)
        else {}
    )

    def launch(component: Component, got: Any, upstream: list) -> Any:
        # Foundation tasks take their needs' results; those not re-run come from inputs.
        return submit(ctx, component, {**inputs, **got}, namespaces, upstream)

    async def met(name: str) -> bool:
        if name in found:
            return found[name].ok
        future = detect_drift.submit(ctx, catalogue.component(name), namespaces)
        return (await result_of(future)).ok

    try:
        await run_components(runnable, resolve_needs(ctx.spec, catalogue), launch, met)
    except ComponentsFailed as exc:
        failures.update(exc.failures)
    return failures


def report_rows(
    before: dict[str, Finding], after: dict[str, Finding] | None
) -> list[dict[str, str]]:
    """One row per component: its finding; with remediation, before and after."""
    if after is None:
        return [f.as_dict() for f in before.values()]
    rows = []
    for name, first in before.items():
        last = after[name]
        detail = first.detail if first == last else f"{first.detail} -> {last.detail}"
        rows.append(
            {
                "component": name,
                "workflow": first.workflow,
                "kind": first.kind,
                "before": first.status,
                "after": last.status,
                "detail": detail,
            }
        )
    return rows


def summary_markdown(
    environment: str,
    before: dict[str, Finding],
    after: dict[str, Finding] | None,
    failures: dict[str, str],
) -> str:
    final = after or before
    counts = Counter(f.status for f in before.values())
    lines = [
        f"# Drift of {environment}",
        "",
        f"{len(before)} checked: " + ", ".join(f"{counts[s]} {s}" for s in SEVERITY if counts[s]),
        "",
    ]
    drifted = [f for f in before.values() if not f.ok]
    if drifted:
        lines += ["| component | workflow | status | detail |", "|---|---|---|---|"]
        lines += [f"| {f.component} | {f.workflow} | {f.status} | {f.detail} |" for f in drifted]
        lines.append("")
    if after is not None and drifted:
        fixed = [f.component for f in drifted if final[f.component].ok]
        left = [f.component for f in drifted if not final[f.component].ok]
        lines.append("## Remediation")
        lines.append("")
        lines.append(f"- converged and healthy: {', '.join(fixed) or 'none'}")
        lines.append(f"- still drifted: {', '.join(left) or 'none'}")
        lines += [f"- {name} failed: {error.splitlines()[0]}" for name, error in failures.items()]
    elif not drifted:
        lines.append("The platform matches its spec.")
    return "\n".join(lines)


async def publish(
    environment: str,
    before: dict[str, Finding],
    after: dict[str, Finding] | None,
    failures: dict[str, str],
) -> None:
    await acreate_table_artifact(
        key=f"drift-{environment}",
        table=report_rows(before, after),
        description=f"Drift of {environment}: one row per component (ok, drifted, missing, "
        "unhealthy)" + (", before and after remediation" if after is not None else ""),
    )
    await acreate_markdown_artifact(
        key=f"drift-summary-{environment}",
        markdown=summary_markdown(environment, before, after, failures),
        description=f"Drift of {environment}, summarized",
    )


def _event(name: str, environment: str, findings: dict[str, Finding], remediate: bool) -> None:
    counts = Counter(f.status for f in findings.values())
    emit_event(
        event=name,
        resource={
            "prefect.resource.id": EVENT_RESOURCE.format(environment=environment),
            "prefect.resource.name": environment,
            "platform.environment": environment,
            # A remediation's own findings are not answered with another remediation.
            "platform.remediating": str(remediate).lower(),
        },
        payload={
            "counts": dict(counts),
            "components": [f.component for f in findings.values() if not f.ok],
            "remediate": remediate,
        },
    )
