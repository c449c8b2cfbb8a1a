"""How each kind of component is submitted as a Prefect task, with what it needs.

Foundation kinds pass results along (the network and roles to the cluster, the cluster to
node groups and add-ons); the other kinds read what they need from the spec and the
target. Every submission waits only for the component's own needs (``wait_for``).
"""

from __future__ import annotations

from prefect.futures import PrefectFuture

from blueprint.catalogue import Component
from flows.dag import Launcher
from tasks import foundation as f
from tasks import platform as p
from tasks.context import RunContext
from tasks.gates import retry_policy

Futures = dict[str, PrefectFuture]


def launchers(ctx: RunContext, namespaces: dict[str, str]) -> dict[str, Launcher]:
    def vpc(c: Component, got: Futures, up: list) -> PrefectFuture:
        return f.converge_vpc.submit(ctx, component=c.name, wait_for=up)

    def iam(c: Component, got: Futures, up: list) -> PrefectFuture:
        return f.converge_iam.submit(ctx, component=c.name, wait_for=up)

    def eks(c: Component, got: Futures, up: list) -> PrefectFuture:
        return f.converge_eks.submit(ctx, got["vpc"], got["iam"], component=c.name, wait_for=up)

    def node_groups(c: Component, got: Futures, up: list) -> PrefectFuture:
        return f.converge_node_groups.submit(
            ctx, got["vpc"], got["iam"], got["eks"], component=c.name, wait_for=up
        )

    def addon(c: Component, got: Futures, up: list) -> PrefectFuture:
        return f.converge_addon.submit(ctx, c.addon, got["eks"], component=c.name, wait_for=up)

    def storage_class(c: Component, got: Futures, up: list) -> PrefectFuture:
        return f.converge_storage_class.submit(ctx, component=c.name, wait_for=up)

    def gate(c: Component, got: Futures, up: list) -> PrefectFuture:
        return gate_task(ctx, c).submit(ctx, c, wait_for=up)

    def release(c: Component, got: Futures, up: list) -> PrefectFuture:
        return p.converge_release.submit(ctx, c, namespaces, wait_for=up)

    def bucket(c: Component, got: Futures, up: list) -> PrefectFuture:
        return p.converge_bucket.submit(ctx, c, wait_for=up)

    def crds(c: Component, got: Futures, up: list) -> PrefectFuture:
        return p.converge_chart_crds.submit(ctx, c, wait_for=up)

    return {
        "vpc": vpc,
        "iam": iam,
        "eks-cluster": eks,
        "node-groups": node_groups,
        "eks-addon": addon,
        "storage-class": storage_class,
        "gate": gate,
        "helm-release": release,
        "s3-bucket": bucket,
        "chart-crds": crds,
    }


def gate_task(ctx: RunContext, component: Component):
    """The gate task with its budget: the spec's timeout and retry interval, paced."""
    assert component.gate is not None
    gate = getattr(ctx.spec.gates, component.gate)
    return p.check_gate.with_options(**retry_policy(gate, ctx.pace))
