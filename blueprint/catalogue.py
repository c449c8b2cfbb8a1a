"""The component catalogue: every component of the seven workflows, as validated data.

``catalogue.yaml`` beside this file is the data; these models check it. A component says
what it is (kind and the details that kind needs), which workflow it belongs to, what it
needs and why, its own timeout, and how long the guide says it takes.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from blueprint.errors import SpecError, problems_from, reject
from blueprint.graph import graph_problems
from blueprint.loader import read_yaml
from blueprint.spec import ESSENTIAL_ADDONS, FEATURE_ADDONS, WORKFLOWS, Model, PlatformSpec
from blueprint.units import DnsLabel, Duration, ReleaseName

CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")

Kind = Literal[
    "vpc",  # hand-written task: VPC, subnets, gateways, routes, security groups
    "iam",  # hand-written task: cluster and node roles
    "eks-cluster",  # hand-written task: the control plane
    "node-groups",  # hand-written task: every node group of the spec
    "eks-addon",  # generic task: one EKS managed add-on
    "storage-class",  # generic task: StorageClass and VolumeSnapshotClass
    "s3-bucket",  # generic task: a bucket with lifecycle rules
    "helm-release",  # generic task: one chart release
    "chart-crds",  # generic task: the CRDs a chart ships, applied ahead of the chart
    "gate",  # readiness gate: a check retried within the spec's budget
]
IN_CLUSTER_KINDS = ("eks-addon", "storage-class", "helm-release", "chart-crds")
Profile = Literal["min", "mid", "max"]
PROFILES: tuple[Profile, ...] = ("min", "mid", "max")

_PINNED = re.compile(r"^v?\d+\.\d+\.\d+$")


class Minutes(Model):
    """How long a component (or phase) takes: a range and where the numbers come from."""

    min: float = Field(ge=0, description="Lower bound (minutes)")
    max: float = Field(ge=0, description="Upper bound (minutes)")
    basis: str = Field(min_length=5, description="The guide's phase it comes from, or why less")

    @model_validator(mode="after")
    def _order(self) -> Minutes:
        if self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self

    def pick(self, profile: Profile) -> float:
        return {"min": self.min, "max": self.max, "mid": (self.min + self.max) / 2}[profile]


class ChartRef(Model):
    """A chart pinned at a published version in its real upstream repository."""

    repository: str = Field(description="https helm repository, or oci:// registry path")
    name: str = Field(description="Chart name in that repository")
    version: str = Field(description="Exact published chart version (no ranges)")
    release: ReleaseName = Field(description="Helm release name (<= 53 characters)")

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not value.startswith(("https://", "oci://")):
            raise ValueError(f"{value!r}: a chart repository is an https:// or oci:// address")
        return value.rstrip("/")

    @field_validator("version")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if not _PINNED.match(value):
            raise ValueError(f"{value!r} is not an exact version; pin charts (e.g. 1.21.1)")
        return value

    @property
    def reference(self) -> str:
        """What ``helm install`` takes as the chart argument (with ``--repo`` for https)."""
        return f"{self.repository}/{self.name}" if self.is_oci else self.name

    @property
    def is_oci(self) -> bool:
        return self.repository.startswith("oci://")


class Component(Model):
    name: DnsLabel = Field(description="Unique component name")
    workflow: Literal[WORKFLOWS] = Field(description="The guide's workflow it belongs to")  # type: ignore[valid-type]
    kind: Kind = Field(description="Which task runs it")
    description: str = Field(min_length=5, description="What it is, in a line")
    needs: dict[DnsLabel, str] = Field(
        default_factory=dict, description="Components it needs, each with the reason"
    )
    minutes: Minutes = Field(description="Duration from the guide")
    timeout: Duration | None = Field(
        default=None, description="Budget of its task; gates take theirs from the spec"
    )
    namespace: DnsLabel | None = Field(
        default=None, description="Namespace, when not the workflow's namespace from the spec"
    )
    chart: ChartRef | None = Field(default=None, description="helm-release: the chart")
    addon: str | None = Field(default=None, description="eks-addon: the EKS add-on name")
    gate: Literal["foundation", "ingress", "observability"] | None = Field(
        default=None, description="gate: which of the spec's gates"
    )
    storage: Literal["mimir", "loki"] | None = Field(
        default=None, description="s3-bucket: whose object storage settings it uses"
    )

    @model_validator(mode="after")
    def _kind_details(self) -> Component:
        problems = [
            f"needs.{n}: the reason is empty" for n, r in self.needs.items() if not r.strip()
        ]
        wanted = {
            "chart": ("helm-release", "chart-crds"),
            "addon": ("eks-addon",),
            "gate": ("gate",),
            "storage": ("s3-bucket",),
        }
        for field, kinds in wanted.items():
            present = getattr(self, field) is not None
            if present and self.kind not in kinds:
                problems.append(f"{field} is only for kind {' or '.join(kinds)}, not {self.kind}")
            if self.kind in kinds and not present:
                problems.append(f"kind {self.kind} needs {field}")
        if self.kind != "gate" and self.timeout is None:
            problems.append("timeout is missing")
        if self.kind == "gate" and self.timeout is not None:
            problems.append("a gate's timeout comes from the spec's gates, not the catalogue")
        known = (*ESSENTIAL_ADDONS, *FEATURE_ADDONS)
        if self.addon is not None and self.addon not in known:
            problems.append(f"addon {self.addon!r} is not one of {', '.join(known)}")
        reject(problems)
        return self

    def namespace_in(self, spec: PlatformSpec) -> str | None:
        """Where it lives in the cluster: its own namespace or its workflow's; None outside."""
        if self.kind not in IN_CLUSTER_KINDS:
            return None
        return self.namespace or spec.namespaces.get(self.workflow)


class Phase(Model):
    """One barrier of the guide's own phase plan."""

    name: str = Field(description="workflow/phase as the guide names it")
    components: list[DnsLabel] = Field(min_length=1, description="Components done in it")
    minutes: Minutes = Field(description="The guide's execution_time for the phase")


class Catalogue(Model):
    components: list[Component] = Field(min_length=1, description="Every component")
    guide_phase_plan: list[Phase] = Field(
        min_length=1, description="The guide's phases, run one after another"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        names = [c.name for c in self.components]
        problems = [
            f"components: {n!r} is defined twice" for n in sorted(set(names)) if names.count(n) > 1
        ]
        problems += graph_problems({c.name: list(c.needs) for c in self.components})
        placed = [n for p in self.guide_phase_plan for n in p.components]
        for p in self.guide_phase_plan:
            problems += [
                f"guide_phase_plan {p.name}: unknown component {n!r}"
                for n in p.components
                if n not in names
            ]
        problems += [f"guide_phase_plan: {n!r} is in no phase" for n in names if n not in placed]
        problems += [
            f"guide_phase_plan: {n!r} is in several phases"
            for n in sorted(set(placed))
            if placed.count(n) > 1
        ]
        releases = [c.chart.release for c in self.components if c.chart]
        problems += [
            f"components: helm release {r!r} is used twice"
            for r in sorted(set(releases))
            if releases.count(r) > 1
        ]
        reject(problems)
        return self

    def component(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.components]


def parse_catalogue(data: dict) -> Catalogue:
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        raise SpecError(problems_from(exc, prefix="catalogue")) from None


@cache
def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    return parse_catalogue(read_yaml(path))
