"""The in-cluster worker's Kubernetes work pool, kept by the platform through the Prefect API.

The pool's base job template is prefect-kubernetes' own with the platform's defaults: its
flow runs are Jobs of the platform image, in the worker's namespace, under the service
account whose IAM role (IRSA) has an access entry. ``PLATFORM_RUNNER=in-cluster`` is written
into the container itself, not into the ``env`` variable a deployment may replace, so every
flow run of the pool knows it executes inside the VPC.
"""

from __future__ import annotations

import copy
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.client.schemas.objects import WorkPoolStatus
from prefect.exceptions import ObjectNotFound

from blueprint.spec import RUNNER_JOB_ACCOUNT, PlatformSpec, work_pool
from tasks.runner import IN_CLUSTER, RUNNER_ENV

POOL_TYPE = "kubernetes"
FINISHED_JOB_TTL = 24 * 3600  # seconds a finished flow-run Job stays for its logs


def base_job_template(spec: PlatformSpec, namespace: str) -> dict[str, Any]:
    from prefect_kubernetes.worker import KubernetesWorker

    template = copy.deepcopy(KubernetesWorker.get_default_base_job_template())
    defaults = {
        "image": spec.runner.image,
        "namespace": namespace,
        "service_account_name": RUNNER_JOB_ACCOUNT,
        "finished_job_ttl": FINISHED_JOB_TTL,
    }
    for name, value in defaults.items():
        template["variables"]["properties"][name]["default"] = value
    manifest = template["job_configuration"]["job_manifest"]
    manifest["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": RUNNER_ENV, "value": IN_CLUSTER}
    ]
    return template


def ensure_work_pool(spec: PlatformSpec, namespace: str) -> str | None:
    """Create the pool, or put its template back; returns what changed."""
    name, template = work_pool(spec), base_job_template(spec, namespace)
    description = (
        f"Flow runs of the {spec.platform.environment!r} platform, executed inside its "
        "cluster's VPC by the in-cluster worker"
    )
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=name, type=POOL_TYPE, base_job_template=template, description=description
                ),
                overwrite=False,
            )
            return f"created work pool {name}"
        if pool.type != POOL_TYPE:
            raise ValueError(
                f"work pool {name!r} exists with type {pool.type!r}; the in-cluster worker "
                f"needs a {POOL_TYPE!r} pool: name another in runner.work_pool"
            )
        if pool.base_job_template == template:
            return None
        client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
        return f"updated the job template of work pool {name}"


def worker_online(spec: PlatformSpec) -> bool:
    """Whether a worker polls the pool (Prefect marks it READY while one does)."""
    with get_client(sync_client=True) as client:
        pool = client.read_work_pool(work_pool(spec))
    return pool.status == WorkPoolStatus.READY


def runner_api_url(spec: PlatformSpec) -> str:
    """The Prefect API the in-cluster worker uses: the spec's, else the one this run reports
    to (a temporary server's too, as in ``platformctl up``: its URL is this machine's)."""
    if spec.runner.api_url:
        return spec.runner.api_url
    with get_client(sync_client=True) as client:
        return str(client.api_url).rstrip("/")
