"""EKS updates of a cluster or node group, waited for one at a time.

EKS runs one update of a cluster (or of a node group) at a time and refuses the next with
ResourceInUseException while one is in progress. So every update call here is followed by
a wait on its own DescribeUpdate until it has finished: the next update then starts on a
settled resource instead of counting on a retry.
"""

from __future__ import annotations

from typing import Any

from blueprint.pace import Pace
from tasks.aws.clients import AwsClients
from tasks.aws.errors import PermanentAwsError, aws_call
from tasks.polling import WaitTimeout, poll_until

UPDATE_BUDGET_SECONDS = 30 * 60  # endpoint access takes minutes; a node group roll longer


def wait_update(
    aws: AwsClients,
    cluster: str,
    update: dict[str, Any],
    pace: Pace,
    nodegroup: str | None = None,
) -> dict[str, Any]:
    """Poll the update until it has ended; Failed or Cancelled is a permanent error that
    carries EKS's error details."""
    what = f"node group {nodegroup}" if nodegroup else f"cluster {cluster}"
    request: dict[str, Any] = {"name": cluster, "updateId": update["id"]}
    if nodegroup:
        request["nodegroupName"] = nodegroup

    def ended() -> dict[str, Any] | None:
        with aws_call("eks:DescribeUpdate"):
            current = aws("eks").describe_update(**request)["update"]
        return None if current["status"] == "InProgress" else current

    try:
        done = poll_until(
            ended, pace.budget(UPDATE_BUDGET_SECONDS), pace.poll(15), f"{what} update"
        )
    except WaitTimeout as exc:
        raise PermanentAwsError(
            "eks:DescribeUpdate", "UpdateTimeout", f"{update['type']} of {what}: {exc}"
        ) from None
    if done["status"] != "Successful":
        errors = "; ".join(
            f"{e.get('errorCode')}: {e.get('errorMessage')}" for e in done.get("errors", [])
        )
        raise PermanentAwsError(
            "eks:DescribeUpdate",
            f"Update{done['status']}",
            f"{update['type']} of {what} ended {done['status']}: {errors or 'no detail'}",
        )
    return done
