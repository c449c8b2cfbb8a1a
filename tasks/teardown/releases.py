"""The platform's helm releases, found in the cluster and uninstalled dependants first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from prefect import task
from prefect.cache_policies import NONE

from blueprint.catalogue import Catalogue, Component
from blueprint.plan import resolve_needs
from blueprint.spec import PlatformSpec
from blueprint.units import duration_seconds
from tasks.aws.eks import converge_endpoint, owned_cluster
from tasks.aws.errors import TransientAwsError
from tasks.context import RunContext, helm_binary
from tasks.helm import list_releases, uninstall_release
from tasks.locks import helm_slot
from tasks.retries import CONVERGE
from tasks.runner import building_from_outside
from tasks.teardown.base import (
    RELEASE_SECONDS,
    managed_selector,
)


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    component: str | None  # its catalogue component; None for one the catalogue does not list
    timeout_seconds: float

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def catalogue_releases(spec: PlatformSpec, catalogue: Catalogue) -> dict[str, Component]:
    """The catalogue's releases by ``<namespace>/<release>``."""
    return {
        f"{c.namespace_in(spec)}/{c.chart.release}": c
        for c in catalogue.components
        if c.kind == "helm-release" and c.chart is not None
    }


def managed_namespaces(api: k8s.ApiClient) -> list[str]:
    """Namespaces the platform created (labelled when created; see tasks/helm.py)."""
    listed = k8s.CoreV1Api(api).list_namespace(label_selector=managed_selector())
    return sorted(n.metadata.name for n in listed.items)


def platform_releases(
    rows: Iterable[dict[str, Any]], ctx: RunContext, catalogue: Catalogue, namespaces: list[str]
) -> list[Release]:
    """The releases of ``helm list`` that are the platform's: the catalogue's, and any other
    in a namespace the platform created (it goes with that namespace anyway)."""
    known = catalogue_releases(ctx.spec, catalogue)
    found = []
    for row in rows:
        key = f"{row['namespace']}/{row['name']}"
        component = known.get(key)
        if component is None and row["namespace"] not in namespaces:
            continue
        seconds = (
            float(duration_seconds(component.timeout))
            if component is not None and component.timeout is not None
            else RELEASE_SECONDS
        )
        found.append(
            Release(
                row["name"],
                row["namespace"],
                component.name if component else None,
                ctx.pace.budget(seconds),
            )
        )
    return sorted(found, key=lambda r: r.key)


def uninstall_plan(
    spec: PlatformSpec, catalogue: Catalogue, present: list[Release]
) -> list[tuple[Release, list[Release]]]:
    """Each present release, dependants first, with the releases to uninstall before it:
    those that need it directly or through components that are not releases here (a gate,
    CRDs, a release already gone). Releases the catalogue does not list go before all
    of the catalogue's: they may run on the platform, never the other way round."""
    needs = resolve_needs(spec, catalogue)
    by_component = {r.component: r for r in present if r.component is not None}
    foreign = [r for r in present if r.component is None]

    def release_needs(name: str) -> set[str]:
        found: set[str] = set()
        stack, seen = list(needs[name]), set()
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if node in by_component:
                found.add(node)
            else:
                stack.extend(needs[node])
        return found

    dependants: dict[str, list[str]] = {name: [] for name in by_component}
    for name in by_component:
        for need in release_needs(name):
            dependants[need].append(name)
    plan: list[tuple[Release, list[Release]]] = [(r, []) for r in foreign]
    done: set[str] = set()

    def visit(name: str) -> None:  # dependants before what they need
        if name in done:
            return
        done.add(name)
        for dependant in sorted(dependants[name]):
            visit(dependant)
        before = [by_component[d] for d in sorted(dependants[name])]
        plan.append((by_component[name], [*foreign, *before]))

    for name in sorted(by_component):
        visit(name)
    return plan


@task(name="cluster-access", task_run_name="cluster-access", **CONVERGE)
def cluster_access(ctx: RunContext) -> str | None:
    """None when the cluster's API answers; otherwise why not (e.g. a private endpoint out
    of reach, or no cluster at all). Throttling on the way is retried, not taken for an
    answer: a cluster taken for out of reach has its releases and Services skipped. A
    cluster of the spec's name that is not the platform's stops the teardown here, before
    anything in it is touched.

    A cluster handed to its in-cluster worker is opened to the build CIDRs again first: the
    teardown runs from outside, since it removes the worker with everything else."""
    cluster = owned_cluster(ctx.spec, ctx.aws)
    if cluster is not None and cluster["status"] == "ACTIVE" and building_from_outside(ctx.spec):
        converge_endpoint(ctx.spec, ctx.aws, cluster, ctx.pace)
    try:
        with ctx.kube() as api:
            k8s.VersionApi(api).get_code()
    except TransientAwsError:
        raise
    except Exception as exc:
        first_line = (str(exc).splitlines() or [""])[0]
        return f"{type(exc).__name__}: {first_line}"
    return None


@task(name="find-releases", task_run_name="find-releases", cache_policy=NONE)
async def find_releases(ctx: RunContext, catalogue: Catalogue) -> list[Release]:
    with ctx.kube() as api:
        namespaces = managed_namespaces(api)
    with ctx.kubeconfig() as kubeconfig:
        rows = await list_releases(helm_binary(), kubeconfig)
    return platform_releases(rows, ctx, catalogue, namespaces)


@task(name="helm-uninstall", task_run_name="uninstall-{release.name}", cache_policy=NONE)
async def uninstall(ctx: RunContext, release: Release) -> list[str]:
    with ctx.kubeconfig() as kubeconfig:
        removed = await uninstall_release(
            helm=helm_binary(),
            kubeconfig=kubeconfig,
            release=release.name,
            namespace=release.namespace,
            timeout_seconds=release.timeout_seconds,
            slot=helm_slot(ctx.spec.platform.environment, release.timeout_seconds),
        )
    return [f"release {release.key}"] if removed else []
