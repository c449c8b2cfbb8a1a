"""The pure parts of keeping runs bounded: flow budgets from the plan, the budget guard,
"create or converge" on AlreadyExists, the report's scheduling delays, and which failures
count as transient."""

from __future__ import annotations

import asyncio
import json

import pytest
from botocore.exceptions import ClientError
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError

from blocks.target import PlatformTarget
from blueprint.catalogue import load_catalogue
from blueprint.loader import load_spec
from blueprint.pace import Pace
from blueprint.plan import plan
from blueprint.spec import WORKFLOWS
from flows.budget import BudgetExceeded, budget, within
from platformctl.run import scheduling
from tasks.aws.errors import create_or_adopt
from tasks.context import RunContext
from tasks.kube import converge_object
from tasks.progress import Board
from tasks.retries import ReleaseFailed, helm_transient, is_transient

SPEC = load_spec("sandbox")


def context(time_scale: float) -> RunContext:
    target = PlatformTarget.model_construct(environment="sandbox", region="us-east-1")
    return RunContext(SPEC, target, Pace(time_scale))


def test_a_flow_budget_is_its_planned_finish_at_the_pace_with_margin_and_allowance():
    planned = plan(SPEC, load_catalogue(), "max")
    finish = {
        w: max(c.finish_min for c in planned.components if c.workflow == w) for w in WORKFLOWS
    }
    for scale in (60.0, 0.2):
        limits = budget(context(scale), list(WORKFLOWS))
        for workflow, minutes in finish.items():
            wanted = minutes * scale * 1.5 + 300  # margin 1.5, allowance 5m
            assert limits.workflows[workflow] == pytest.approx(wanted, abs=0.1), workflow
        assert limits.run == pytest.approx(planned.critical_path_minutes * scale * 1.5 + 300, 0.1)
    # Real time: the 72.5-minute critical path gets 109 minutes and 5 more.
    assert budget(context(60.0), list(WORKFLOWS)).run == pytest.approx(72.5 * 60 * 1.5 + 300)


def test_within_names_the_budget_and_lets_other_timeouts_through():
    async def sleeps() -> None:
        async with within(0.05, "workflow gitops"):
            await asyncio.sleep(5)

    with pytest.raises(BudgetExceeded, match="workflow gitops did not finish within its budget"):
        asyncio.run(sleeps())

    async def times_out_itself() -> None:
        async with within(5, "teardown"):
            raise TimeoutError("a request of its own")

    with pytest.raises(TimeoutError, match="a request of its own") as raised:
        asyncio.run(times_out_itself())
    assert not isinstance(raised.value, BudgetExceeded)


def api_error(status: int) -> ApiException:
    return ApiException(status=status, reason={404: "Not Found", 409: "Conflict"}.get(status))


def test_a_create_that_finds_the_object_made_meanwhile_converges_it():
    calls: list[str] = []
    state = {"exists": False}

    def read() -> dict:
        calls.append("read")
        if not state["exists"]:
            raise api_error(404)
        return {"spec": "theirs"}

    def create() -> None:
        calls.append("create")
        state["exists"] = True  # a killed run's helm made it between our read and create
        raise api_error(409)

    def update(current: dict) -> str:
        calls.append(f"update {current['spec']}")
        return "replaced"

    assert converge_object(read, create, update) == "replaced"
    assert calls == ["read", "create", "read", "update theirs"]


def test_converge_object_creates_and_passes_other_errors_through():
    assert converge_object(lambda: (_ for _ in ()).throw(api_error(404)), lambda: None, str) == (
        "created"
    )
    with pytest.raises(ApiException):
        converge_object(lambda: (_ for _ in ()).throw(api_error(403)), lambda: None, str)


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Create",
    )


def test_an_aws_create_that_finds_it_exists_hands_back_none():
    def exists() -> None:
        raise client_error("EntityAlreadyExists", 409)

    assert create_or_adopt("iam:CreateRole", exists, "EntityAlreadyExists") is None
    assert create_or_adopt("iam:CreateRole", lambda: {"Role": 1}, "EntityAlreadyExists") == {
        "Role": 1
    }
    with pytest.raises(Exception, match="AccessDenied"):
        create_or_adopt(
            "iam:CreateRole",
            lambda: (_ for _ in ()).throw(client_error("AccessDenied", 403)),
            "EntityAlreadyExists",
        )


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (api_error(409), True),
        (ApiException(status=429), True),
        (ApiException(status=503), True),
        (ApiException(status=0), True),  # no answer at all
        (ApiException(status=403), False),
        (ApiException(status=422), False),
        (MaxRetryError(None, "/version"), True),
        (ReleaseFailed("helm: the server is currently unable to handle the request", True), True),
        (ReleaseFailed("helm: context deadline exceeded", False), False),
        (ValueError("a bug"), False),
    ],
)
def test_which_failures_are_transient(error: BaseException, transient: bool):
    assert is_transient(error) is transient


@pytest.mark.parametrize(
    ("stderr", "transient"),
    [
        (
            "Error: create: failed to create: the server is currently unable to handle the request",
            True,
        ),
        (
            'Error: Get "https://10.0.0.1/version": dial tcp: connect: connection refused',
            True,
        ),
        ("Error: INSTALLATION FAILED: etcdserver: request timed out", True),
        ("Error: INSTALLATION FAILED: context deadline exceeded", False),
        ("Error: timed out waiting for the condition", False),
        ('Error: template: x/templates/a.yaml:3: executing "x" at <.Values.a>: nil pointer', False),
        ('Error: Deployment.apps "x" is invalid: spec.replicas: Invalid value', False),
    ],
)
def test_helm_errors_by_cause(stderr: str, transient: bool):
    assert helm_transient(stderr) is transient


def test_scheduling_delays_follow_the_last_need():
    board = Board()
    times = {
        "a": (0.0, 0.00, 1.0),  # (submitted, started, finished)
        "b": (0.0, 0.01, 2.0),
        "c": (2.02, 2.10, 3.0),  # needs a and b: ready at 2.0
    }
    for name, (submitted, started, finished) in times.items():
        board._update(name, "w", submitted_at=submitted, started_at=started, finished_at=finished)
    found = scheduling(board, {"a": {}, "b": {}, "c": {"a": "x", "b": "y"}})
    assert found["submitted"]["delays_s"] == {"a": 0.0, "b": 0.0, "c": 0.02}
    assert found["started"]["delays_s"] == {"a": 0.0, "b": 0.01, "c": pytest.approx(0.1)}
    assert found["started"]["max_s"] == pytest.approx(0.1)
    assert json.dumps(found)  # the report is JSON
