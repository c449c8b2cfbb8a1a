"""Everything the platform owns in its target: AWS resources by tag, and in the cluster its
helm releases and the namespaces it created."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client as k8s

from tasks.aws.inventory import aws_inventory
from tasks.context import RunContext, helm_binary
from tasks.helm import MANAGED_BY, list_releases


def cluster_inventory(ctx: RunContext) -> dict[str, Any]:
    """Helm releases (name, namespace, chart, version, revision, status) and namespaces."""
    selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    namespaces = [
        n.metadata.name
        for n in k8s.CoreV1Api(ctx.kube()).list_namespace(label_selector=selector).items
    ]
    with ctx.kubeconfig() as kubeconfig:
        releases = asyncio.run(list_releases(helm_binary(), kubeconfig))
    rows = []
    for release in releases:
        chart, _, version = release["chart"].rpartition("-")
        rows.append(
            {
                "name": release["name"],
                "namespace": release["namespace"],
                "chart": chart,
                "version": version,
                "revision": int(release["revision"]),
                "status": release["status"],
            }
        )
    return {"namespaces": sorted(namespaces), "helm_releases": rows}


def inventory(ctx: RunContext) -> dict[str, Any]:
    result: dict[str, Any] = {
        "environment": ctx.spec.platform.environment,
        "aws": aws_inventory(ctx.spec, ctx.aws),
    }
    try:
        result.update(cluster_inventory(ctx))
    except Exception as exc:  # no cluster yet: AWS alone is the inventory
        result["cluster_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return result
