"""AWS errors sorted into transient (retry) and permanent (fail at once, with the cause).

botocore's adaptive retry mode already retries throttling and 5xx inside each call; what
still reaches a task is classified here, so Prefect's task retries run only for errors
that another attempt can fix (throttling that outlasted botocore, eventual consistency).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

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


def is_transient(error: ClientError) -> bool:
    code = error_code(error)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    message = error.response.get("Error", {}).get("Message", "")
    if code in THROTTLING or code in SERVER_SIDE or code in EVENTUALLY_CONSISTENT:
        return True
    if code in ("InvalidParameterException", "InvalidRequestException"):
        return bool(_SETTLING_MESSAGES.search(message))
    return status >= 500


def classify(action: str, error: Exception) -> AwsError:
    if isinstance(error, ClientError):
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", str(error))
        cls = TransientAwsError if is_transient(error) else PermanentAwsError
        return cls(action, code, message)
    if isinstance(error, BotoConnectionError | ReadTimeoutError):
        return TransientAwsError(action, type(error).__name__, str(error))
    if isinstance(error, WaiterError):
        reason = str(error)
        last = (error.last_response or {}).get("Error", {})
        code = last.get("Code", "WaiterFailed")
        # A waiter that hit a failure state (e.g. FAILED cluster) will not heal by waiting.
        cls = PermanentAwsError if "terminal failure state" in reason else TransientAwsError
        return cls(action, code, reason)
    raise error


@contextmanager
def aws_call(action: str) -> Iterator[None]:
    """Translate botocore errors raised inside into Transient/PermanentAwsError."""
    try:
        yield
    except (ClientError, BotoConnectionError, ReadTimeoutError, WaiterError) as exc:
        raise classify(action, exc) from exc


def retry_if_transient(task, task_run, state) -> bool:
    """Prefect ``retry_condition_fn``: retry only what another attempt can fix."""
    try:
        state.result()
    except AwsError as exc:
        return exc.transient
    except Exception:
        return False
    return False
