"""prefect.yaml: every flow deployed for the sandbox (process pool) and for production
(Kubernetes pool), entrypoints that load, and the re-validation schedule of the spec."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect.flows import load_flow_from_entrypoint

from blueprint.loader import load_spec
from blueprint.spec import WORKFLOWS

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
    for flow in FLOWS:
        assert sandbox[flow]["work_pool"]["name"] == "platform-process"
        assert sandbox[flow]["parameters"] == {"environment": "sandbox"}
        assert production[flow]["work_pool"]["name"] == "platform-kubernetes"
        assert production[flow]["parameters"] == {"environment": "production"}
        assert production[flow]["work_pool"] == production["bootstrap_platform"]["work_pool"]
        assert production[flow]["work_pool"]["job_variables"]["image"] == "{{ $PLATFORM_IMAGE }}"
        for deployment in (sandbox[flow], production[flow]):
            assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}


def test_only_revalidation_is_scheduled_and_on_the_specs_cron() -> None:
    cron = load_spec("sandbox").health_monitoring.revalidation_cron
    assert cron == load_spec("production").health_monitoring.revalidation_cron
    for name in ("sandbox", "production"):
        for flow, deployment in deployments(name).items():
            crons = [s["cron"] for s in deployment.get("schedules", [])]
            assert crons == ([cron] if flow == "revalidate_platform" else []), (name, flow)
