"""The stand-in charts as validated data: ``standins.yaml`` beside this file.

One entry per upstream chart: its name and pinned version, the workloads, services,
ServiceMonitors, CRDs and further objects the real chart's main parts render, and the
defaults of the values keys those read. The generic templates in ``templates/`` turn an
entry into manifests; these models only check the data and hand each chart its part.

Field kinds (see the header of standins.yaml): a *template* is Go template text rendered
with the chart's context (.Values, .Release, .Chart, .name, .fullname, .namespace); a
*value path* is a dotted path (or a list of keys) into .Values.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

STANDINS_FILE = Path(__file__).with_name("standins.yaml")

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
_TEMPLATE = re.compile(r"\{\{.*\}\}", re.S)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

ValuePath = str | list[str]
Scalar = str | int


class StandInError(ValueError):
    pass


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_template(text: str) -> bool:
    return bool(_TEMPLATE.search(text))


class Volume(Model):
    """A persistent volume: a claim template of a StatefulSet, else a claim of its own."""

    name: str = Field(description="Template: volume name (the claim template's name)")
    mount_path: str
    size: Scalar = Field(description="Template: the requested storage, e.g. 8Gi")
    condition: str | None = Field(default=None, description="Template rendering true/false")
    storage_class: str | None = Field(default=None, description="Template; '-' means no class")
    access_modes: str = Field(
        default="ReadWriteOnce", description="Template rendering comma-separated access modes"
    )
    claim_name: str | None = Field(default=None, description="Template: a Deployment's PVC name")


class ServicePort(Model):
    name: str
    port: Scalar = Field(description="Template: the service port")
    target: str | None = Field(default=None, description="Container port name (default: name)")


class Service(Model):
    name: str = Field(description="Template")
    ports: list[str | ServicePort] = Field(
        default_factory=list, description="Container port names (same number) or explicit ports"
    )
    ports_from: ValuePath | None = Field(
        default=None, description="Value path of a list of {name, port, targetPort}"
    )
    condition: str | None = None
    type: str = Field(default="ClusterIP", description="Template")
    headless: bool = False
    annotations: ValuePath | dict[str, str] | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_ports(self) -> Service:
        if bool(self.ports) == bool(self.ports_from):
            raise ValueError(f"service {self.name}: give either ports or ports_from")
        return self


class ServiceMonitor(Model):
    """Scrapes the workload's services on a port when the chart's switch is on."""

    condition: str = Field(description="Template: the chart's ServiceMonitor switch")
    port: str = Field(description="Service port name")
    path: str = "/metrics"
    interval: str | None = Field(default=None, description="Template")
    labels: ValuePath | dict[str, str] | None = None


class Container(Model):
    image: str = Field(description="Template")
    command: list[str] = Field(
        default_factory=list, description="Templates, one or more lines each"
    )
    args: list[str] = Field(default_factory=list, description="Templates, one or more lines each")
    ports: dict[str, int] = Field(default_factory=dict)
    env: ValuePath | None = Field(default=None, description="Value path of a list of env entries")
    env_vars: dict[str, str] = Field(
        default_factory=dict,
        description="Further env entries: name -> template of the value (empty: left out)",
    )
    resources: ValuePath | dict[str, Any] | None = Field(
        default=None, description="Value path, or literal map with template leaves"
    )
    resources_preset: ValuePath | None = Field(
        default=None, description="Value path of a Bitnami resourcesPreset name"
    )
    security_context: ValuePath | dict[str, Any] | None = Field(
        default=None, description="Value path, or literal map with template leaves"
    )


class Sidecar(Container):
    name: str
    condition: str | None = None


class Workload(Container):
    component: str = Field(description="app.kubernetes.io/component and the container's name")
    name: str = Field(description="Template")
    kind: str = Field(default="Deployment", description="Template rendering a workload kind")
    condition: str | None = None
    app_name: str | None = Field(
        default=None, description="app.kubernetes.io/name when not the chart's (subcharts)"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Further labels, also in the selector (e.g. zone)"
    )
    container: str | None = Field(default=None, description="Container name (default component)")
    service_account: str | None = Field(
        default=None, description="Template: the pod's service account (empty: default)"
    )
    replicas: Scalar | None = Field(default=None, description="Template; empty: left unset")
    hook: str | None = Field(default=None, description="Jobs: the helm.sh/hook events")
    volumes: list[Volume] = Field(default_factory=list)
    sidecars: list[Sidecar] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    service_monitor: ServiceMonitor | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Workload:
        problems = []
        if not is_template(self.kind) and self.kind not in WORKLOAD_KINDS:
            problems.append(f"kind {self.kind!r} is not one of {', '.join(WORKLOAD_KINDS)}")
        if self.kind in ("DaemonSet", "Job") and self.volumes:
            problems.append(f"a {self.kind} has no persistent volumes here")
        if self.hook and self.kind != "Job":
            problems.append("only a Job can be a hook")
        known = set(self.ports)
        for sidecar in self.sidecars:
            known |= set(sidecar.ports)
        for service in self.services:
            for port in service.ports:
                target = port if isinstance(port, str) else (port.target or port.name)
                if target not in known:
                    problems.append(f"service {service.name}: no container port {target!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class CrdKind(Model):
    kind: str
    plural: str | None = None
    short_names: list[str] = Field(default_factory=list)
    scope: Literal["Namespaced", "Cluster"] | None = None


class CrdGroup(Model):
    group: str
    versions: list[str] = Field(min_length=1, description="Served versions; the first is stored")
    scope: Literal["Namespaced", "Cluster"] = "Namespaced"
    kinds: list[str | CrdKind] = Field(min_length=1)


class Crds(Model):
    location: Literal["templates", "crds"] = Field(
        default="templates", description="templates: rendered behind condition; crds: helm's crds/"
    )
    condition: str | None = None
    keep: str | None = Field(default=None, description="Template: add resource-policy keep")
    exclude: ValuePath | None = Field(default=None, description="Value path: CRD names to skip")
    groups: list[CrdGroup] = Field(min_length=1)

    @model_validator(mode="after")
    def _switches_need_templates(self) -> Crds:
        if self.location == "crds" and (self.condition or self.keep or self.exclude):
            raise ValueError("CRDs in crds/ cannot have condition, keep or exclude")
        return self


class ExtraObject(Model):
    manifest: str = Field(description="Template of one or more manifests, split by --- lines")
    condition: str | None = None
    cluster_scoped: bool = False


class StandIn(Model):
    version: str
    app_version: str
    source: str = Field(description="The real chart's repository")
    name: str | None = Field(default=None, description="Base name of fullname (default chart's)")
    release_aliases: list[str] = Field(
        default_factory=list, description="Release names containing these are used as fullname"
    )
    fullname_max: int = Field(default=63, ge=10, le=63)
    namespace: str = Field(default="{{ .Release.Namespace }}", description="Template")
    labels: dict[str, str] = Field(default_factory=dict, description="Templates, on every object")
    crds: Crds | None = None
    workloads: list[Workload] = Field(default_factory=list)
    objects: list[ExtraObject] = Field(default_factory=list)
    values: dict[str, Any] = Field(default_factory=dict)

    @property
    def uses_presets(self) -> bool:
        containers = [c for w in self.workloads for c in (w, *w.sidecars)]
        return any(c.resources_preset for c in containers)


class StandIns(Model):
    resource_presets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    charts: dict[str, StandIn] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> StandIns:
        problems = []
        for name, chart in self.charts.items():
            if not _DNS_LABEL.match(name):
                problems.append(f"{name!r} is not a valid chart name")
            names = [w.name for w in chart.workloads]
            problems += [
                f"{name}: workload {n!r} is defined twice" for n in set(names) if names.count(n) > 1
            ]
            if chart.uses_presets and not self.resource_presets:
                problems.append(f"{name}: uses resources_preset but no resource_presets exist")
        if problems:
            raise ValueError("; ".join(sorted(problems)))
        return self


@cache
def load_standins(path: Path = STANDINS_FILE) -> StandIns:
    """The stand-ins of ``path`` (read once per path); StandInError when they are invalid."""
    try:
        data = yaml.safe_load(path.read_text())
        return StandIns.model_validate(data)
    except (OSError, yaml.YAMLError, ValueError) as error:
        raise StandInError(f"{path}: {error}") from error
