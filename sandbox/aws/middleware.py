"""The WSGI application in front of moto: identifies each call, injects faults, routes EKS.

Order per request: identify the operation; if an ``aws-throttle``, ``aws-error`` or
``aws-denied`` fault targets it, answer with that error in the request's protocol (each
answer uses up one count of the fault, so ``count: N`` means "the next N calls"); EKS calls
go to the local EKS API; S3, EC2, load balancer, IAM and Service Quotas calls pass the rules
moto does not keep (``s3_rules``, ``ec2_rules``, ``elb_rules``, ``iam_rules``, ``quotas``);
all others reach moto unchanged.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Response

from sandbox.aws.ec2_rules import Ec2Rules, Lingering
from sandbox.aws.eks_api import OPERATION_KEY, EksApi
from sandbox.aws.elb_rules import ElbRules
from sandbox.aws.errors import denied, error_response, throttling, unavailable
from sandbox.aws.iam_rules import IamRules
from sandbox.aws.moto_app import WsgiApp
from sandbox.aws.operations import Operation, OperationIdentifier
from sandbox.aws.quotas import QuotaRules
from sandbox.aws.s3_rules import S3Rules
from sandbox.settings import SandboxSettings

HEALTH_PATH = "/_sandbox/health"


class AwsFrontend:
    def __init__(self, moto_app: WsgiApp, eks: EksApi, settings: SandboxSettings):
        self._moto = moto_app
        self._eks = eks
        self._s3 = S3Rules(moto_app, settings)
        # Interfaces of deleted load balancers: the ELB rules leave them, EC2 sees them go.
        lingering = Lingering(lambda: settings.latency)
        self._ec2 = Ec2Rules(moto_app, lingering)
        self._elb = ElbRules(moto_app, lingering)
        self._quotas = QuotaRules(moto_app, settings)
        self._iam = IamRules(moto_app)
        self._settings = settings
        self._identifier = OperationIdentifier()
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()

    def calls(self) -> dict[str, int]:
        """How often each ``service:Operation`` was called (faulted calls included)."""
        with self._lock:
            return dict(self._calls)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return Response("ok", content_type="text/plain")(environ, start_response)
        operation = self._identifier.identify(environ)
        if operation is None:
            return self._moto(environ, start_response)
        environ[OPERATION_KEY] = operation
        with self._lock:
            self._calls[str(operation)] += 1
        fault = self._fault(operation)
        if fault is not None:
            return fault(environ, start_response)
        if operation.service == "eks":
            return self._eks(environ, start_response)
        if operation.service == "s3":
            return self._s3(operation, environ, start_response)
        if operation.service == "ec2":
            return self._ec2(operation, environ, start_response)
        if operation.service == "elasticloadbalancing":
            return self._elb(operation, environ, start_response)
        if operation.service == "iam":
            return self._iam(operation, environ, start_response)
        if operation.service == "servicequotas":
            return self._quotas(operation, environ, start_response)
        return self._moto(environ, start_response)

    def _fault(self, operation: Operation) -> Response | None:
        subject, faults = str(operation), self._settings.faults
        if faults.fire("aws-throttle", subject):
            error = throttling(operation.protocol, operation.service)
        elif faults.fire("aws-error", subject):
            error = unavailable()
        elif faults.fire("aws-denied", subject):
            error = denied(operation.protocol, subject)
        else:
            return None
        return error_response(operation.protocol, operation.service, error)
