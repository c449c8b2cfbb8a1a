"""Prefect tasks of workflows 2-7: one generic helm release, S3 storage, and the gates.

A helm release's chart, version, namespace and timeout come from the catalogue; its values
from the spec (``tasks.values``). Releases, CRDs and buckets retry transient failures
(``tasks.retries``). Gates run one check per attempt; the flow gives them the spec's
budget as retries (``tasks.gates.retry_policy``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from blueprint.catalogue import Component
from blueprint.spec import RUNNER_JOB_ACCOUNT, STORAGE_PARTS, bucket_name, work_pool
from blueprint.units import duration_seconds
from tasks.aws.errors import AwsError, aws_call
from tasks.aws.iam import SERVICE_ACCOUNT_ROLES
from tasks.aws.identity import Identity
from tasks.aws.s3 import ensure_bucket
from tasks.context import RunContext, helm_binary
from tasks.gates import (
    GateNotReady,
    GateRefused,
    cluster_api_accessible,
    load_balancer_provisioned,
    not_ready_unless_refused,
    prometheus_targets_discovered,
)
from tasks.helm import MANAGED_BY, apply_crds, chart_crds, ensure_namespace, ensure_release
from tasks.inputs import dns_token
from tasks.kube import converge_object
from tasks.locks import helm_slot
from tasks.polling import poll_until
from tasks.progress import board
from tasks.retries import CONVERGE
from tasks.values import ValuesContext, chart_values
from tasks.values.context import ROLE_ANNOTATION
from tasks.work_pool import ensure_work_pool, runner_api_url, worker_online

DNS_TOKEN_SECRET = "external-dns-cloudflare"  # the k8s Secret external-dns reads (api-token)


def service_account_roles(ctx: RunContext) -> dict[str, str]:
    """ARNs of the service-account roles the foundation created (those that exist)."""
    iam, prefix = ctx.aws("iam"), Identity.of(ctx.spec).prefix
    roles = {}
    for role in SERVICE_ACCOUNT_ROLES:
        try:
            with aws_call("iam:GetRole"):
                roles[role.suffix] = iam.get_role(RoleName=f"{prefix}-{role.suffix}")["Role"]["Arn"]
        except AwsError as exc:
            if exc.code != "NoSuchEntity":
                raise
    return roles


def values_context(ctx: RunContext, namespaces: dict[str, str]) -> ValuesContext:
    return ValuesContext(
        spec=ctx.spec,
        namespaces=namespaces,
        buckets={part: bucket_name(ctx.spec, part, ctx.aws.account_id()) for part in STORAGE_PARTS},
        service_account_roles=service_account_roles(ctx),
        dns_token_secret=DNS_TOKEN_SECRET,
        prefect_api_url=runner_api_url(ctx.spec),
    )


def _dns_token(ctx: RunContext, api: k8s.ApiClient, namespace: str) -> None:
    """external-dns reads its Cloudflare token from a Secret, filled from a Prefect Secret
    block (the token never appears in values, parameters or logs)."""
    if ctx.spec.ingress.external_dns.provider != "cloudflare":
        return
    token = dns_token(ctx.spec)
    body = {
        "metadata": {"name": DNS_TOKEN_SECRET, "labels": dict(MANAGED_BY)},
        "type": "Opaque",
        "data": {"api-token": base64.b64encode(token.encode()).decode()},
    }
    core = k8s.CoreV1Api(api)

    def update(current: k8s.V1Secret) -> str | None:
        if (current.data or {}) == body["data"]:
            return None
        core.replace_namespaced_secret(DNS_TOKEN_SECRET, namespace, body)
        return "replaced"

    converge_object(
        lambda: core.read_namespaced_secret(DNS_TOKEN_SECRET, namespace),
        lambda: core.create_namespaced_secret(namespace, body),
        update,
    )


def _runner_pool(ctx: RunContext, api: k8s.ApiClient, namespace: str) -> None:
    """The work pool the worker will serve, with the platform's job template, and the
    service account its flow-run jobs run as, bound to the runner's IAM role (IRSA)."""
    changed = ensure_work_pool(ctx.spec, namespace)
    if changed:
        get_run_logger().info(changed)
    role = service_account_roles(ctx).get("runner")
    if role is None:
        raise GateNotReady("runner: its IAM role is missing (made by the foundation's eks)")
    body = {
        "metadata": {
            "name": RUNNER_JOB_ACCOUNT,
            "labels": dict(MANAGED_BY),
            "annotations": {ROLE_ANNOTATION: role},
        }
    }
    core = k8s.CoreV1Api(api)

    def update(current: k8s.V1ServiceAccount) -> str | None:
        if (current.metadata.annotations or {}).get(ROLE_ANNOTATION) == role:
            return None
        core.patch_namespaced_service_account(RUNNER_JOB_ACCOUNT, namespace, body)
        return "annotated"

    converge_object(
        lambda: core.read_namespaced_service_account(RUNNER_JOB_ACCOUNT, namespace),
        lambda: core.create_namespaced_service_account(namespace, body),
        update,
    )


def _runner_online(ctx: RunContext, budget: float) -> None:
    """The release is Ready once its worker polls the pool, not merely once its pod runs."""
    poll_until(
        lambda: True if worker_online(ctx.spec) else None,
        timeout=budget,
        interval=ctx.pace.poll(10),
        what=f"a worker polling work pool {work_pool(ctx.spec)!r}",
    )


# Steps a release needs in the cluster before helm runs, and after it, by component.
BEFORE_RELEASE: dict[str, Callable[[RunContext, k8s.ApiClient, str], None]] = {
    "external-dns": _dns_token,
    "runner": _runner_pool,
}
AFTER_RELEASE: dict[str, Callable[[RunContext, float], None]] = {"runner": _runner_online}


@task(name="helm-release", task_run_name="{component.name}", **CONVERGE)
async def converge_release(
    ctx: RunContext, component: Component, namespaces: dict[str, str]
) -> dict[str, Any]:
    """Install or upgrade one chart; unchanged releases are left alone."""
    assert component.chart is not None and component.timeout is not None
    name, workflow = component.name, component.workflow
    with board.track(name, workflow):
        namespace = namespaces[name]
        api = ctx.kube()
        ensure_namespace(api, namespace)
        if name in BEFORE_RELEASE:
            BEFORE_RELEASE[name](ctx, api, namespace)
        values = chart_values(name, values_context(ctx, namespaces))
        budget = ctx.pace.budget(float(duration_seconds(component.timeout)))
        slot = helm_slot(
            ctx.spec.platform.environment,
            budget,
            on_wait=lambda: board.note(name, workflow, "waiting for a helm slot"),
        )
        with ctx.kubeconfig() as kubeconfig:
            result = await ensure_release(
                helm=helm_binary(),
                kubeconfig=kubeconfig,
                chart=component.chart,
                namespace=namespace,
                values=values,
                timeout_seconds=budget,
                repository_override=ctx.target.chart_repository,
                slot=slot,
            )
        if name in AFTER_RELEASE:
            AFTER_RELEASE[name](ctx, budget)
        board.note(name, workflow, result.action)
        return result.__dict__


@task(name="chart-crds", task_run_name="{component.name}", **CONVERGE)
async def converge_chart_crds(ctx: RunContext, component: Component) -> dict[str, Any]:
    """Apply a chart's CRDs ahead of the charts that create their custom resources."""
    assert component.chart is not None
    with board.track(component.name, component.workflow):
        crds = await chart_crds(helm_binary(), component.chart, ctx.target.chart_repository)
        changes = apply_crds(ctx.kube(), crds)
        board.note(component.name, component.workflow, f"{len(crds)} CRDs, {len(changes)} changed")
        return {"crds": len(crds), "changes": changes}


@task(name="s3-bucket", task_run_name="{component.name}", **CONVERGE)
def converge_bucket(ctx: RunContext, component: Component) -> dict[str, Any]:
    assert component.storage is not None
    with board.track(component.name, component.workflow):
        bucket = ensure_bucket(ctx.spec, ctx.aws, component.storage)
        return {"bucket": bucket.name, "changes": bucket.changes}


def _gate_check(ctx: RunContext, component: Component) -> dict[str, Any]:
    try:
        api = ctx.kube()
    except AwsError as exc:  # the cluster has no endpoint yet, or AWS throttles: not yet
        if exc.code == "NoEndpoint" or exc.transient:
            raise GateNotReady(f"cluster API unreachable: {exc}") from exc
        raise
    try:
        if component.gate == "foundation":
            return cluster_api_accessible(api)
        namespaces = ctx.spec.namespaces
        if component.gate == "ingress":
            return load_balancer_provisioned(api, namespaces["ingress"], "ambassador")
        return prometheus_targets_discovered(api, namespaces["observability"], "prometheus")
    except (GateNotReady, GateRefused):
        raise
    except Exception as exc:
        raise not_ready_unless_refused(f"gate {component.gate}", exc) from exc
    finally:
        api.close()


@task(name="gate", task_run_name="{component.name}", cache_policy=NONE)
def check_gate(ctx: RunContext, component: Component) -> dict[str, Any]:
    """One attempt of a readiness gate; retried by the flow within the spec's budget."""
    with board.track(component.name, component.workflow, waiting_on=(GateNotReady,)):
        return _gate_check(ctx, component)
