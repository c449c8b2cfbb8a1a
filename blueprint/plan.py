"""The plan of a run: what starts when, the critical path, and the guide's plan to beat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from blueprint.catalogue import PROFILES, Catalogue, Profile
from blueprint.errors import SpecError
from blueprint.graph import graph_problems, schedule
from blueprint.spec import PlatformSpec


@dataclass(frozen=True)
class PlannedComponent:
    name: str
    workflow: str
    kind: str
    namespace: str | None
    needs: list[str]
    minutes: float
    start_min: float
    finish_min: float
    slack_min: float
    critical: bool
    chart: str | None


@dataclass(frozen=True)
class Plan:
    environment: str
    profile: Profile
    components: list[PlannedComponent]
    critical_path: list[str]
    critical_path_minutes: float
    guide_phase_plan_minutes: float
    kpi_minutes: float
    # The same two figures under every profile, to show the range the guide's numbers span.
    range_minutes: dict[str, dict[str, float]]

    @property
    def within_kpi(self) -> bool:
        return self.critical_path_minutes <= self.kpi_minutes

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "profile": self.profile,
            "components": [c.__dict__ for c in self.components],
            "critical_path": self.critical_path,
            "critical_path_minutes": self.critical_path_minutes,
            "guide_phase_plan_minutes": self.guide_phase_plan_minutes,
            "saved_minutes": round(self.guide_phase_plan_minutes - self.critical_path_minutes, 3),
            "kpi_minutes": self.kpi_minutes,
            "within_kpi": self.within_kpi,
            "range_minutes": self.range_minutes,
        }


def resolve_needs(spec: PlatformSpec, catalogue: Catalogue) -> dict[str, dict[str, str]]:
    """Each component's needs with their reasons: the catalogue's plus the spec's
    ``extra_needs``; a SpecError if that names unknown components or closes a cycle."""
    needs = {c.name: dict(c.needs) for c in catalogue.components}
    problems = []
    for name, extra in spec.extra_needs.items():
        if name not in needs:
            problems.append(f"extra_needs.{name}: unknown component {name!r}")
            continue
        for dep, reason in extra.items():
            if not reason.strip():
                problems.append(f"extra_needs.{name}.{dep}: the reason is empty")
            needs[name][dep] = reason
    problems += [f"extra_needs: {p}" for p in graph_problems(needs)]
    if problems:
        raise SpecError(problems)
    return needs


def durations(catalogue: Catalogue, profile: Profile) -> dict[str, float]:
    return {c.name: c.minutes.pick(profile) for c in catalogue.components}


def guide_phase_plan_minutes(catalogue: Catalogue, profile: Profile) -> float:
    """The guide's plan: phases one after another, each a barrier as long as the guide says."""
    return sum(p.minutes.pick(profile) for p in catalogue.guide_phase_plan)


def plan(spec: PlatformSpec, catalogue: Catalogue, profile: Profile = "max") -> Plan:
    needs = resolve_needs(spec, catalogue)
    sched = schedule(needs, durations(catalogue, profile))
    planned = []
    for c in catalogue.components:
        slot = sched.slots[c.name]
        planned.append(
            PlannedComponent(
                name=c.name,
                workflow=c.workflow,
                kind=c.kind,
                namespace=c.namespace_in(spec),
                needs=list(needs[c.name]),
                minutes=c.minutes.pick(profile),
                start_min=round(slot.start, 3),
                finish_min=round(slot.finish, 3),
                slack_min=round(slot.slack, 3),
                critical=slot.critical,
                chart=f"{c.chart.name}@{c.chart.version}" if c.chart else None,
            )
        )
    ranges = {
        p: {
            "critical_path": round(schedule(needs, durations(catalogue, p)).makespan, 3),
            "guide_phase_plan": round(guide_phase_plan_minutes(catalogue, p), 3),
        }
        for p in PROFILES
    }
    return Plan(
        environment=spec.platform.environment,
        profile=profile,
        components=planned,
        critical_path=sched.critical_path,
        critical_path_minutes=round(sched.makespan, 3),
        guide_phase_plan_minutes=round(guide_phase_plan_minutes(catalogue, profile), 3),
        kpi_minutes=spec.kpis.total_deployment_minutes,
        range_minutes=ranges,
    )
