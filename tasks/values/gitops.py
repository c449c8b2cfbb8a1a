"""Workflow 4, GitOps: Argo CD in the GitOps namespace, Tekton Pipelines in its own."""

from __future__ import annotations

from typing import Any

from tasks.values.context import ValuesContext, fixed_resources

# The guide sizes none of these; modest starts for a platform's own handful of applications.
ARGOCD_RESOURCES = {
    "controller": fixed_resources("100m", "256Mi", "500m", "1Gi"),
    "server": fixed_resources("50m", "128Mi", "250m", "256Mi"),
    "repoServer": fixed_resources("50m", "128Mi", "500m", "512Mi"),
    "applicationSet": fixed_resources("25m", "64Mi", "100m", "128Mi"),
    "notifications": fixed_resources("25m", "64Mi", "100m", "128Mi"),
    "redis": fixed_resources("50m", "64Mi", "200m", "128Mi"),
}
TEKTON_CONTROLLER_RESOURCES = fixed_resources("100m", "128Mi", "500m", "512Mi")

_MONITORED = {"enabled": True, "serviceMonitor": {"enabled": True}}


def argocd(ctx: ValuesContext) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: {"resources": resources} for name, resources in ARGOCD_RESOURCES.items()
    }
    for name in ("controller", "server", "repoServer", "applicationSet", "notifications"):
        values[name]["metrics"] = _MONITORED
    values["redis"]["exporter"] = {"enabled": True}
    values["redis"]["metrics"] = _MONITORED
    # The UI and API are published as an Emissary Mapping on the shared gateway, which
    # terminates TLS with the wildcard certificate: a plain ClusterIP Service, no Ingress,
    # and plain HTTP behind the gateway.
    values["server"]["service"] = {"type": "ClusterIP"}
    values["server"]["ingress"] = {"enabled": False}
    values["configs"] = {"params": {"server.insecure": True}}
    values["global"] = {"domain": f"argocd.{ctx.spec.ingress.domain}"}
    # No SSO connector is configured, so Dex would run with nothing to do.
    values["dex"] = {"enabled": False}
    return values


def tekton(ctx: ValuesContext) -> dict[str, Any]:
    return {
        # The chart's objects go to the release's namespace (tekton-pipelines, where its
        # webhooks point); namespace.name only names a Namespace it would create, and the
        # platform creates the release's namespace itself.
        "namespace": {"create": False},
        # The chart ships no ServiceMonitor; its controllers expose metrics on port 9090.
        "controller": {"resources": TEKTON_CONTROLLER_RESOURCES},
    }


BUILDERS = {"argocd": argocd, "tekton": tekton}
