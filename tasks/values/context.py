"""What chart values are built from, and the small conversions every workflow's values share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from blueprint.catalogue import ChartRef, load_catalogue
from blueprint.spec import PlatformSpec, Resources
from blueprint.units import duration_seconds

# IRSA: the EKS pod identity webhook gives a pod this role when its service account says so.
ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"

_GO_UNITS = re.compile(r"^((\d+)(ms|s|m|h))+$")


@dataclass(frozen=True)
class ValuesContext:
    """What values need besides the spec; known only at run time."""

    spec: PlatformSpec
    namespaces: dict[str, str]  # component -> namespace it is installed in
    buckets: dict[str, str]  # "mimir" / "loki" -> S3 bucket name
    service_account_roles: dict[str, str]  # "external-dns" / "cert-manager" / ... -> role ARN
    dns_token_secret: str  # Secret (key "api-token") holding the Cloudflare API token
    prefect_api_url: str = ""  # the Prefect API the in-cluster worker reports to

    @property
    def storage_class(self) -> str:
        return self.spec.storage_class.name

    def role_annotations(self, service: str) -> dict[str, str]:
        """The service account annotation binding ``service``'s IAM role; empty when unknown."""
        arn = self.service_account_roles.get(service)
        return {ROLE_ANNOTATION: arn} if arn else {}


def catalogue_namespaces(spec: PlatformSpec) -> dict[str, str]:
    """Namespace of every helm-release component of the catalogue under ``spec``."""
    return {
        c.name: c.namespace_in(spec)
        for c in load_catalogue().components
        if c.kind == "helm-release" and c.namespace_in(spec)
    }


def chart_ref(component: str) -> ChartRef:
    chart = load_catalogue().component(component).chart
    if chart is None:
        raise KeyError(f"{component!r} is not a helm-release component")
    return chart


def release_name(component: str) -> str:
    return chart_ref(component).release


def helm_fullname(release: str, name: str, limit: int = 63) -> str:
    """The usual chart ``fullname``: the release when it contains ``name``, else both joined.

    Charts cut it to ``limit`` characters (kube-prometheus-stack to 26) and drop a trailing dash.
    """
    full = release if name in release else f"{release}-{name}"
    full = full[:limit]
    return full[:-1] if full.endswith("-") else full


def spec_resources(resources: Resources) -> dict[str, Any]:
    """A container ``resources`` map from the spec's requests and limits."""
    return fixed_resources(
        resources.requests.cpu,
        resources.requests.memory,
        resources.limits.cpu,
        resources.limits.memory,
    )


def fixed_resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    """A container ``resources`` map for parts the guide does not size."""
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


def go_duration(value: str) -> str:
    """A spec duration in the form Go's ``time.ParseDuration`` reads (no d, w or y units).

    Prometheus-style settings take ``15d`` as is; Go-parsed ones (external-dns ``--interval``,
    Loki's ``max_chunk_age``, Tempo's block retention) need it spelled in hours.
    """
    if _GO_UNITS.match(value):
        return value
    seconds = duration_seconds(value)
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count = int(seconds // size)
        if count:
            parts.append(f"{count}{unit}")
            seconds -= count * size
    if seconds:
        parts.append(f"{int(seconds * 1000)}ms")
    return "".join(parts) or "0s"
