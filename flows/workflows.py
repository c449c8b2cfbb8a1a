"""Workflows 2-7 as flows, each runnable alone (prerequisites then go through the gates).

They differ only in which catalogue components they run, so one factory makes them; each
is a module-level flow (deployments name them as ``flows/workflows.py:<name>``).
"""

from __future__ import annotations

from typing import Any

from prefect import Flow, flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.parameters import ENVIRONMENT, SPEC_FILE, TIME_SCALE
from flows.run_names import run_name
from flows.workflow import run_context, run_workflow


def workflow_flow(workflow: str, description: str) -> Flow:
    @flow(
        name=workflow,
        flow_run_name=run_name(workflow),
        # gates and helm waits hold threads while the work itself is I/O
        task_runner=ThreadPoolTaskRunner(max_workers=32),
        description=description,
    )
    async def run(
        environment: str = ENVIRONMENT,
        time_scale: float | None = TIME_SCALE,
        spec_file: str | None = SPEC_FILE,
    ) -> dict[str, Any]:
        return await run_workflow(workflow, await run_context(environment, spec_file, time_scale))

    return run


ingress = workflow_flow(
    "ingress", "Workflow 2: cert-manager, external-dns, Emissary CRDs and gateway; LB gate."
)
observability = workflow_flow(
    "observability",
    "Workflow 3: S3 storage, Prometheus CRDs, Mimir, Prometheus, Loki, Tempo, Grafana; "
    "targets gate.",
)
gitops = workflow_flow("gitops", "Workflow 4: Argo CD and Tekton.")
security = workflow_flow("security", "Workflow 5: OpenBao, OPA Gatekeeper, Falco.")
service_mesh = workflow_flow("service-mesh", "Workflow 6: Istio base and istiod.")
data_services = workflow_flow(
    "data-services", "Workflow 7: PostgreSQL, Redis, Kafka on the shared gp3 class."
)
