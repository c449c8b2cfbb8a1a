"""The foundation's one chart: the platform's own Prefect worker (prefect-worker).

It serves the environment's Kubernetes work pool from inside the cluster's VPC, talking to
the Prefect API the building run uses (or ``runner.api_url``). Its image is Prefect's at the
version this project runs, so worker, flow runs and server agree.
"""

from __future__ import annotations

from typing import Any

import prefect

from blueprint.spec import work_pool
from tasks.values.context import ValuesContext, fixed_resources

WORKER_RESOURCES = fixed_resources("100m", "256Mi", "500m", "512Mi")


def runner(ctx: ValuesContext) -> dict[str, Any]:
    spec = ctx.spec
    return {
        "worker": {
            "apiConfig": "selfHostedServer",
            "selfHostedServerApiConfig": {"apiUrl": ctx.prefect_api_url},
            "config": {
                "workPool": work_pool(spec),
                "type": "kubernetes",
                # The -kubernetes image has prefect-kubernetes already.
                "installPolicy": "never",
            },
            # Set, so the chart need not look the kube-system namespace up at install.
            "clusterUid": f"{spec.platform.name}-{spec.platform.environment}",
            "image": {"prefectTag": f"{prefect.__version__}-python3.11-kubernetes"},
            "resources": WORKER_RESOURCES,
        },
    }


BUILDERS = {"runner": runner}
