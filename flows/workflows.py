"""Workflows 2-7 as flows, each runnable alone (prerequisites then go through the gates)."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from blocks.target import PlatformTarget
from flows.workflow import run_workflow
from tasks.pace import REAL_TIME

RUNNER = ThreadPoolTaskRunner(max_workers=32)  # gates and waits hold threads, work is I/O


@flow(name="ingress", flow_run_name="ingress-{target.environment}", task_runner=RUNNER)
async def ingress(
    target: PlatformTarget, spec_file: str | None = None, time_scale: float = REAL_TIME
) -> dict[str, Any]:
    """Workflow 2: cert-manager, external-dns, Emissary CRDs and gateway; load balancer gate."""
    return await run_workflow("ingress", target, spec_file, time_scale)


@flow(name="observability", flow_run_name="observability-{target.environment}", task_runner=RUNNER)
async def observability(
    target: PlatformTarget, spec_file: str | None = None, time_scale: float = REAL_TIME
) -> dict[str, Any]:
    """Workflow 3: S3 storage, Mimir, Prometheus, Loki, Tempo, Grafana; targets gate."""
    return await run_workflow("observability", target, spec_file, time_scale)


@flow(name="gitops", flow_run_name="gitops-{target.environment}", task_runner=RUNNER)
async def gitops(
    target: PlatformTarget, spec_file: str | None = None, time_scale: float = REAL_TIME
) -> dict[str, Any]:
    """Workflow 4: Argo CD and Tekton."""
    return await run_workflow("gitops", target, spec_file, time_scale)


@flow(name="security", flow_run_name="security-{target.environment}", task_runner=RUNNER)
async def security(
    target: PlatformTarget, spec_file: str | None = None, time_scale: float = REAL_TIME
) -> dict[str, Any]:
    """Workflow 5: OpenBao, OPA Gatekeeper, Falco."""
    return await run_workflow("security", target, spec_file, time_scale)


@flow(name="service-mesh", flow_run_name="service-mesh-{target.environment}", task_runner=RUNNER)
async def service_mesh(
    target: PlatformTarget, spec_file: str | None = None, time_scale: float = REAL_TIME
) -> dict[str, Any]:
    """Workflow 6: Istio base and istiod."""
    return await run_workflow("service-mesh", target, spec_file, time_scale)


@flow(name="data-services", flow_run_name="data-services-{target.environment}", task_runner=RUNNER)
async def data_services(
    target: PlatformTarget, spec_file: str | None = None, time_scale: float = REAL_TIME
) -> dict[str, Any]:
    """Workflow 7: PostgreSQL, Redis, Kafka on the shared gp3 class."""
    return await run_workflow("data-services", target, spec_file, time_scale)
