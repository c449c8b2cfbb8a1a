"""The cluster emptied: LoadBalancer Services and their cloud load balancers, the
namespaces and the volumes they held, then the CRDs and storage classes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from blueprint.catalogue import Catalogue, ChartRef
from tasks.aws.loadbalancers import LoadBalancer, cluster_load_balancers, delete_load_balancer
from tasks.context import RunContext, helm_binary
from tasks.helm import chart_crds
from tasks.polling import WaitTimeout, poll_until
from tasks.retries import CONVERGE
from tasks.storage import SNAPSHOT
from tasks.teardown.base import (
    HELM_RELEASE_ANNOTATIONS,
    LOAD_BALANCER_SECONDS,
    NAMESPACE_SECONDS,
    NO_BODY,
    PROTECTED_NAMESPACES,
    TeardownStuck,
    managed_selector,
)
from tasks.teardown.releases import Release, managed_namespaces


def _is_platform_service(service: Any, namespaces: set[str], releases: set[str]) -> bool:
    if service.spec.type != "LoadBalancer":
        return False
    if service.metadata.namespace in namespaces:
        return True
    annotations = service.metadata.annotations or {}
    name, namespace = (annotations.get(a) for a in HELM_RELEASE_ANNOTATIONS)
    return f"{namespace}/{name}" in releases


@task(name="load-balancer-services", task_run_name="load-balancer-services", **CONVERGE)
def delete_load_balancer_services(ctx: RunContext, releases: list[Release]) -> list[str]:
    """Delete the platform's Services of type LoadBalancer (those in its namespaces, and
    those of its releases elsewhere) and wait until they are gone; on AWS a Service goes
    only once its controller has deleted the cloud load balancer. Returns
    ``<namespace>/<name>`` of each."""
    with ctx.kube() as api:
        core = k8s.CoreV1Api(api)
        namespaces = set(managed_namespaces(api))
        keys = {r.key for r in releases}

        def platform_services() -> list[str]:
            listed = core.list_service_for_all_namespaces()
            return sorted(
                f"{s.metadata.namespace}/{s.metadata.name}"
                for s in listed.items
                if _is_platform_service(s, namespaces, keys)
            )

        services = platform_services()
        for key in services:
            namespace, name = key.split("/", 1)
            try:
                core.delete_namespaced_service(name, namespace, **NO_BODY)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        if services:
            try:
                poll_until(
                    lambda: True if not set(services) & set(platform_services()) else None,
                    ctx.pace.budget(LOAD_BALANCER_SECONDS),
                    ctx.pace.poll(10),
                    "LoadBalancer Services deleted",
                )
            except WaitTimeout as exc:
                left = sorted(set(services) & set(platform_services()))
                raise TeardownStuck(
                    f"{exc}: {', '.join(left)} still there (their load balancer controller "
                    "has not released them; see the Services' events)"
                ) from None
    return services


def wait_gone(ctx: RunContext, balancers: list[LoadBalancer], what: str) -> None:
    cluster, ids = ctx.spec.eks.cluster_name, {b.id for b in balancers}
    poll_until(
        lambda: None if ids & {b.id for b in cluster_load_balancers(ctx.aws, cluster)} else True,
        ctx.pace.budget(LOAD_BALANCER_SECONDS),
        ctx.pace.poll(15),
        what,
    )


@task(name="cloud-load-balancers", task_run_name="cloud-load-balancers", **CONVERGE)
def remove_cloud_load_balancers(ctx: RunContext, services: list[str]) -> list[str]:
    """The cloud load balancers tagged for the cluster: those of the Services just deleted
    are left to their controller (and waited for); the rest, which nothing will delete
    (their Service is gone, or the cluster is out of reach), are deleted here."""
    logger = get_run_logger()
    balancers = cluster_load_balancers(ctx.aws, ctx.spec.eks.cluster_name)
    by_controller = [b for b in balancers if b.service in services]
    orphans = [b for b in balancers if b.service not in services]
    done = []
    if by_controller:
        try:
            wait_gone(ctx, by_controller, "load balancers deleted by the cluster's controller")
            done += [f"{b.describe()}, by its controller" for b in by_controller]
        except WaitTimeout as exc:
            logger.warning("%s; deleting them here", exc)
            orphans += by_controller
    deleted = [b for b in orphans if delete_load_balancer(ctx.aws, b)]
    if orphans:
        wait_gone(ctx, orphans, "load balancers deleted")
    return done + [b.describe() for b in deleted]


def _stuck_namespaces(core: k8s.CoreV1Api, names: list[str]) -> list[str]:
    """Each namespace still there, with what its status says it waits for."""
    out = []
    for namespace in core.list_namespace().items:
        if namespace.metadata.name not in names:
            continue
        reasons = [
            c.message
            for c in (namespace.status.conditions or [])
            if c.status == "True" and c.message
        ]
        out.append(f"{namespace.metadata.name} ({'; '.join(reasons) or namespace.status.phase})")
    return out


def _claimed_volumes(core: k8s.CoreV1Api, namespaces: list[str]) -> list[str]:
    volumes = core.list_persistent_volume().items
    return sorted(
        v.metadata.name
        for v in volumes
        if v.spec.claim_ref is not None and v.spec.claim_ref.namespace in namespaces
    )


def _until_none_left(
    left: Callable[[], list[str]], budget: float, poll: float, what: str, hint: str = ""
) -> None:
    """Wait until ``left()`` is empty; past the budget, name what is still there."""
    try:
        poll_until(lambda: None if left() else True, budget, poll, what)
    except WaitTimeout as exc:
        raise TeardownStuck(f"{exc}: {', '.join(left())}{hint}") from None


@task(name="namespaces", task_run_name="namespaces", **CONVERGE)
def delete_namespaces(ctx: RunContext) -> list[str]:
    """Delete the namespaces the platform created and wait until they are gone, and with
    them the volumes their claims held (a volume left behind is an EBS volume billed)."""
    with ctx.kube() as api:
        core = k8s.CoreV1Api(api)
        names = [n for n in managed_namespaces(api) if n not in PROTECTED_NAMESPACES]
        volumes = _claimed_volumes(core, names)
        for name in names:
            try:
                core.delete_namespace(name, **NO_BODY)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        budget, poll = ctx.pace.budget(NAMESPACE_SECONDS), ctx.pace.poll(5)
        _until_none_left(lambda: _stuck_namespaces(core, names), budget, poll, "namespaces deleted")
        _until_none_left(
            lambda: _claimed_volumes(core, names),
            budget,
            poll,
            "volumes of the deleted namespaces released",
            " (is the EBS CSI driver still running?)",
        )
    return [f"namespace {n}" for n in names] + [f"volume {v}" for v in volumes]


@task(name="chart-crds", task_run_name="chart-crds", cache_policy=NONE)
async def shipped_crds(ctx: RunContext, catalogue: Catalogue) -> list[str]:
    """Names of the CRDs the platform's charts ship (``helm show crds``): those applied
    ahead of a chart, and those of a chart's crds/ folder, which helm never deletes."""
    logger = get_run_logger()
    slots = asyncio.Semaphore(ctx.spec.runtime.helm_concurrency)

    async def shipped(chart: ChartRef) -> list[str]:
        async with slots:
            try:
                crds = await chart_crds(helm_binary(), chart, ctx.target.chart_repository)
            except Exception as exc:  # the chart's source is down: say so, delete the rest
                logger.warning("CRDs of %s %s unknown: %s", chart.name, chart.version, exc)
                return []
        return [crd["metadata"]["name"] for crd in crds]

    charts = {(c.chart.name, c.chart.version): c.chart for c in catalogue.components if c.chart}
    found = await asyncio.gather(*(shipped(chart) for chart in charts.values()))
    return sorted({name for names in found for name in names})


@task(name="cluster-objects", task_run_name="cluster-objects", **CONVERGE)
def delete_cluster_objects(ctx: RunContext, crds: list[str]) -> list[str]:
    """Cluster-scoped objects the platform put in: its storage and snapshot classes and the
    CRDs its charts ship. Last in the cluster, so no controller is left to need them."""
    done = []
    with ctx.kube() as api:
        storage = k8s.StorageV1Api(api)
        for found in storage.list_storage_class(label_selector=managed_selector()).items:
            storage.delete_storage_class(found.metadata.name, **NO_BODY)
            done.append(f"StorageClass {found.metadata.name}")
        custom = k8s.CustomObjectsApi(api)
        try:
            snapshots = custom.list_cluster_custom_object(
                *SNAPSHOT, label_selector=managed_selector()
            )["items"]
        except ApiException as exc:
            if exc.status != 404:  # no snapshot API in this cluster: nothing to delete
                raise
            snapshots = []
        for found in snapshots:
            custom.delete_cluster_custom_object(*SNAPSHOT, found["metadata"]["name"], **NO_BODY)
            done.append(f"VolumeSnapshotClass {found['metadata']['name']}")
        extensions = k8s.ApiextensionsV1Api(api)
        existing = {c.metadata.name for c in extensions.list_custom_resource_definition().items}
        for name in crds:
            if name in existing:
                extensions.delete_custom_resource_definition(name, **NO_BODY)
                done.append(f"CRD {name}")
    return done
