"""AWS errors sorted into transient (retry) and permanent (fail at once, with the cause).

botocore's adaptive retry mode already retries throttling and 5xx inside each call; what
still reaches a task is classified here, so Prefect's task retries run only for errors
that another attempt can fix (throttling that outlasted botocore, eventual consistency).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from botocore.exceptions import (
    ClientError,
    ReadTimeoutError,
    WaiterError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "PriorRequestNotComplete",
    "ProvisionedThroughputExceededException",
    "EC2ThrottledException",
}
SERVER_SIDE = {
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
}
# Codes that mean "not yet": the resource or a dependency is settling.
EVENTUALLY_CONSISTENT = {
    "ResourceInUseException",  # EKS: cluster/add-on busy or not ACTIVE yet
    "IncorrectState",
    "IncorrectInstanceState",
    "DependencyViolation",  # EC2: a dependant is still being deleted
    "InvalidRouteTableID.NotFound",  # EC2 read-after-create
    "InvalidSubnetID.NotFound",
    "InvalidVpcID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidAllocationID.NotFound",
    "InvalidNatGatewayID.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "OperationAbortedException",  # CloudWatch Logs / S3 conflicting operation
    "ConcurrentModificationException",
    "OperationAborted",
}
# Permanent codes that can also mean "a role or add-on API is not visible yet".
_SETTLING_MESSAGES = re.compile(
    r"(could not be assumed|cannot be assumed|(is not|isn't) (yet )?active|"
    r"currently (being )?(created|updated|in progress))",
    re.IGNORECASE,
)


T = TypeVar("T")


class AwsError(RuntimeError):
    """An AWS call failed; the message names the operation, the error code and AWS's cause."""

    transient = False

    def __init__(self, action: str, code: str, message: str):
        self.action, self.code, self.aws_message = action, code, message
        super().__init__(f"{action} failed: {code}: {message}")


class TransientAwsError(AwsError):
    transient = True


class PermanentAwsError(AwsError):
    transient = False


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "Unknown")


def passing(code: str) -> bool:
    """Throttling or a fault on AWS's side: gone on another attempt."""
    return code in THROTTLING or code in SERVER_SIDE


def is_transient(error: ClientError) -> bool:
    code = error_code(error)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    message = error.response.get("Error", {}).get("Message", "")
    if passing(code) or code in EVENTUALLY_CONSISTENT:
        return True
    if code in ("InvalidParameterException", "InvalidRequestException"):
        return bool(_SETTLING_MESSAGES.search(message))
    return status >= 500


def resource_detail(response: dict) -> str:
    """The status and health issues of the resource an EKS describe call returned (a
    cluster, node group or add-on), e.g. ``status DEGRADED; NodeCreationFailure: ...``."""
    for value in response.values():
        if isinstance(value, dict) and "status" in value:
            issues = value.get("health", {}).get("issues", [])
            parts = [f"status {value['status']}"]
            parts += [f"{i.get('code')}: {i.get('message')}" for i in issues]
            return "; ".join(parts)
    return ""


def classify(action: str, error: Exception) -> AwsError:
    if isinstance(error, ClientError):
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", str(error))
        cls = TransientAwsError if is_transient(error) else PermanentAwsError
        return cls(action, code, message)
    if isinstance(error, BotoConnectionError | ReadTimeoutError):
        return TransientAwsError(action, type(error).__name__, str(error))
    if isinstance(error, WaiterError):
        last = error.last_response or {}
        code = last.get("Error", {}).get("Code", "WaiterFailed")
        # Out of attempts or in a failure state, waiting again would not help: the budget
        # was the waiter's. Only an error the waiter met on the way may be transient.
        transient = passing(code)
        detail = resource_detail(last)
        reason = f"{error}; last seen: {detail}" if detail else str(error)
        return (TransientAwsError if transient else PermanentAwsError)(action, code, reason)
    raise error


@contextmanager
def aws_call(action: str) -> Iterator[None]:
    """Translate botocore errors raised inside into Transient/PermanentAwsError."""
    try:
        yield
    except (ClientError, BotoConnectionError, ReadTimeoutError, WaiterError) as exc:
        raise classify(action, exc) from exc


def create_or_adopt(action: str, create: Callable[[], T], *exists: str) -> T | None:
    """Call a create; None when AWS answers that it exists already (``exists`` codes: an
    earlier attempt whose answer was lost, or a run killed after the call), so the caller
    reads the existing one and converges it instead of failing."""
    try:
        with aws_call(action):
            return create()
    except AwsError as exc:
        if exc.code in exists:
            return None
        raise
