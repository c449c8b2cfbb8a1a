"""Which failures another attempt can fix, for every kind of call a task makes, and the
retry options built on that.

- AWS: classified where the call is made (``tasks.aws.errors``): throttling, 5xx and
  eventual consistency are transient; a waiter that ran out of attempts is not.
- The Kubernetes API: 429, 5xx, 409 (a write raced with another: read again) and
  connection errors are transient; other 4xx (403 refused, 422 invalid) are not.
- helm: its error text says whether it could not reach the API (transient) or the release
  itself failed (a chart that does not render, pods that never become ready: permanent).

Prefect retries a task only when ``retry_if_transient`` says so: a permanent error fails at
once, with its cause, and burns no retries.
"""

from __future__ import annotations

import re
from typing import Any

from kubernetes.client.exceptions import ApiException
from prefect.cache_policies import NONE
from urllib3.exceptions import HTTPError as Urllib3Error

from tasks.aws.errors import AwsError

TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
# What helm prints when the API server could not be reached or did not answer; helm's own
# "context deadline exceeded" and "timed out waiting for the condition" mean the release
# did not become ready within --timeout, which another attempt would not change.
HELM_TRANSIENT = re.compile(
    r"connection refused|connection reset|i/o timeout|tls handshake timeout|"
    r"timeout awaiting response headers|client connection lost|unexpected eof|"
    r"the server is currently unable to handle the request|etcdserver|"
    r"too many requests|internal error occurred|service unavailable|bad gateway|"
    r"gateway timeout|the object has been modified|no such host|"
    r"http2: server sent goaway|net/http: request canceled",
    re.IGNORECASE,
)


class ReleaseFailed(RuntimeError):
    """A helm step failed; ``transient`` says whether its cause was reaching the API."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


def helm_transient(stderr: str) -> bool:
    return bool(HELM_TRANSIENT.search(stderr))


def is_transient(error: BaseException) -> bool:
    if isinstance(error, AwsError | ReleaseFailed):
        return error.transient
    if isinstance(error, ApiException):
        return error.status in TRANSIENT_STATUS or not error.status  # 0: no answer at all
    return isinstance(error, Urllib3Error | ConnectionError)


def raised(state: Any) -> BaseException | None:
    """What a failed attempt raised. (``_sync``: called from an async task's engine,
    ``state.result()`` would hand back a coroutine that never raises.)"""
    outcome = state.result(raise_on_failure=False, _sync=True)
    return outcome if isinstance(outcome, BaseException) else None


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only what another attempt can fix."""
    error = raised(state)
    return error is not None and is_transient(error)


# The longest one step may take when nothing sets its budget (a component's is its catalogue
# timeout, set where it is submitted): deleting an EKS cluster takes up to about 20 min.
STEP_SECONDS = 30 * 60
# Options of a task that converges something: no cache (state lives in AWS and the
# cluster), a few more attempts for transient errors, none for permanent ones.
CONVERGE: dict[str, Any] = {
    "cache_policy": NONE,
    "timeout_seconds": STEP_SECONDS,
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_condition_fn": retry_if_transient,
}
