"""Human-readable rendering of a plan (the JSON form is ``Plan.to_json``)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from blueprint.plan import Plan
from blueprint.spec import WORKFLOWS


def _minutes(value: float) -> str:
    return f"{value:g}"


def render_plan(plan: Plan, console: Console) -> None:
    table = Table(
        title=f"Plan for environment {plan.environment!r} (durations: guide {plan.profile})",
        title_justify="left",
    )
    for column, justify in (
        ("workflow", "left"),
        ("component", "left"),
        ("kind", "left"),
        ("needs", "left"),
        ("start", "right"),
        ("finish", "right"),
        ("slack", "right"),
        ("critical", "center"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    by_workflow = {w: [c for c in plan.components if c.workflow == w] for w in WORKFLOWS}
    for workflow, components in by_workflow.items():
        for i, c in enumerate(sorted(components, key=lambda c: (c.start_min, c.name))):
            table.add_row(
                workflow if i == 0 else "",
                c.name,
                c.kind,
                ", ".join(c.needs) or "-",
                _minutes(c.start_min),
                _minutes(c.finish_min),
                _minutes(c.slack_min),
                "*" if c.critical else "",
                end_section=i == len(components) - 1,
            )
    console.print(table)
    console.print(f"Critical path: {' -> '.join(plan.critical_path)}")
    saved = plan.guide_phase_plan_minutes - plan.critical_path_minutes
    console.print(
        f"Planned run: {_minutes(plan.critical_path_minutes)} min on the critical path; "
        f"the guide's phase plan: {_minutes(plan.guide_phase_plan_minutes)} min "
        f"({_minutes(round(saved, 3))} min less)."
    )
    verdict = "within" if plan.within_kpi else "over"
    console.print(f"KPI total_deployment_time < {_minutes(plan.kpi_minutes)} min: {verdict}.")
    spans = ", ".join(
        f"{p}: {_minutes(r['critical_path'])} vs {_minutes(r['guide_phase_plan'])}"
        for p, r in plan.range_minutes.items()
    )
    console.print(f"Across the guide's ranges (critical path vs phase plan): {spans}.")
