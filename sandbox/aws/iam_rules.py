"""IAM's size limit on inline policies, which moto does not keep.

A role's inline policies may hold 10,240 characters in all, whitespace not counted; a
PutRolePolicy beyond that answers 409 LimitExceeded, as IAM does. (The platform's runner
role carries the whole least-privilege policy inline, about 9 KB: a few more permissions
and it would not fit.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from moto.iam.models import iam_backends

from sandbox.aws.ec2_rules import params_of
from sandbox.aws.errors import AwsError, error_response
from sandbox.aws.moto_app import ACCOUNT_ID, WsgiApp
from sandbox.aws.operations import Operation

ROLE_INLINE_LIMIT = 10_240
_SPACE = re.compile(r"\s+")


def policy_size(document: str) -> int:
    """A policy's size as IAM counts it: characters other than whitespace."""
    return len(_SPACE.sub("", document))


class IamRules:
    def __init__(self, moto_app: WsgiApp):
        self._moto = moto_app

    def __call__(
        self, operation: Operation, environ: dict[str, Any], start_response: Callable
    ) -> Iterable[bytes]:
        if operation.name == "PutRolePolicy":
            params = params_of(environ)
            role, name = params.get("RoleName", ""), params.get("PolicyName", "")
            total = policy_size(params.get("PolicyDocument", "")) + self._others(role, name)
            if total > ROLE_INLINE_LIMIT:
                error = AwsError(
                    409,
                    "LimitExceeded",
                    f"Maximum policy size of {ROLE_INLINE_LIMIT} bytes exceeded for role {role}",
                )
                return error_response(operation.protocol, operation.service, error)(
                    environ, start_response
                )
        return self._moto(environ, start_response)

    @staticmethod
    def _others(role: str, replaced: str) -> int:
        """The size of the role's other inline policies (the one of this name is replaced)."""
        try:
            found = iam_backends[ACCOUNT_ID]["global"].get_role(role)
        except Exception:  # no such role: moto answers NoSuchEntity itself
            return 0
        return sum(
            policy_size(unquote(document) if isinstance(document, str) else str(document))
            for name, document in found.policies.items()
            if name != replaced
        )
