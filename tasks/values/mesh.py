"""Workflow 6, service mesh: Istio's base chart and its control plane (istiod).

Both charts nest their defaults under ``_internal_defaults_do_not_set``; users set the same
keys at the top level, which is what these values do.
"""

from __future__ import annotations

from typing import Any

from tasks.values.context import ValuesContext, chart_ref, fixed_resources

# Istio's published images; the chart's in-repo defaults point at a development registry and
# the release process rewrites them, so the image is pinned to the chart's own version.
ISTIO_HUB = "docker.io/istio"
# The chart asks 500m / 2 GiB for "a small pilot install"; a platform of a few dozen
# services needs far less, and the HorizontalPodAutoscaler adds replicas under load.
ISTIOD_RESOURCES = fixed_resources("200m", "512Mi", "1", "1Gi")


def istio_base(ctx: ValuesContext) -> dict[str, Any]:
    # The validating webhook it installs points at istiod in this namespace.
    return {"global": {"istioNamespace": ctx.namespaces["istiod"]}}


def istiod(ctx: ValuesContext) -> dict[str, Any]:
    return {
        "global": {
            "istioNamespace": ctx.namespaces["istiod"],
            "hub": ISTIO_HUB,
            "tag": chart_ref("istiod").version,
        },
        "resources": ISTIOD_RESOURCES,
        "meshConfig": {
            # Sidecars merge the application's own Prometheus metrics into theirs, so one
            # scrape per pod covers both.
            "enablePrometheusMerge": True,
            # Access logs off: the gateway and applications log requests already.
            "accessLogFile": "",
        },
    }


BUILDERS = {"istio-base": istio_base, "istiod": istiod}
