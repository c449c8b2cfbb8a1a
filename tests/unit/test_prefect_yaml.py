"""prefect.yaml: every flow deployed for the sandbox (process pool) and for production
(Kubernetes pool), entrypoints that load, and the re-validation schedule of the spec."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect.flows import load_flow_from_entrypoint

from blueprint.catalogue import load_catalogue
from blueprint.loader import load_spec
from blueprint.spec import RUNNER_JOB_ACCOUNT, WORKFLOWS, work_pool

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = yaml.safe_load((ROOT / "prefect.yaml").read_text())
FLOWS = {"bootstrap_platform", "revalidate_platform", "teardown_platform", *WORKFLOWS}


def deployments(name: str) -> dict[str, dict]:
    found = {}
    for deployment in DOCUMENT["deployments"]:
        if deployment["name"] == name:
            flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
            found[flow.name] = deployment
    return found


def test_every_flow_has_a_sandbox_and_a_production_deployment() -> None:
    sandbox, production = deployments("sandbox"), deployments("production")
    assert set(sandbox) == set(production) == FLOWS
    assert len(DOCUMENT["deployments"]) == 2 * len(FLOWS)
    in_cluster = production["bootstrap_platform"]["work_pool"]
    assert in_cluster["name"] == work_pool(load_spec("production"))
    assert in_cluster["job_variables"]["service_account_name"] == RUNNER_JOB_ACCOUNT
    assert (
        in_cluster["job_variables"]["namespace"] == load_catalogue().component("runner").namespace
    )
    assert in_cluster["job_variables"]["image"] == "{{ $PLATFORM_IMAGE }}"
    # Teardown deletes the worker's cluster: it runs outside, on a process worker.
    outside = production["teardown_platform"]["work_pool"]
    assert outside == {"name": "platform-production-outside", "work_queue_name": "default"}
    for flow in FLOWS:
        assert sandbox[flow]["work_pool"]["name"] == "platform-process"
        assert sandbox[flow]["parameters"] == {"environment": "sandbox"}
        assert production[flow]["parameters"] == {"environment": "production"}
        wanted = outside if flow == "teardown_platform" else in_cluster
        assert production[flow]["work_pool"] == wanted
        for deployment in (sandbox[flow], production[flow]):
            assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}


def test_only_revalidation_is_scheduled_and_on_the_specs_cron() -> None:
    cron = load_spec("sandbox").health_monitoring.revalidation_cron
    assert cron == load_spec("production").health_monitoring.revalidation_cron
    for name in ("sandbox", "production"):
        for flow, deployment in deployments(name).items():
            crons = [s["cron"] for s in deployment.get("schedules", [])]
            assert crons == ([cron] if flow == "revalidate_platform" else []), (name, flow)
