"""Service Quotas as an account holds them: GetServiceQuota for the quotas a platform run
draws on (moto serves the ``vpc`` service code only).

Each quota answers with AWS's default value, except the two vCPU quotas: AWS lists 5 vCPUs
as their default, but accounts are given more from the start (32 is common) and 5 would
not hold the sandbox spec's node groups. ``SandboxSettings.quotas`` (``SERVICE/CODE``:
value) sets any of them, e.g. a quota too small for a spec. Quotas not listed here go to
moto, which answers NoSuchResourceException for what it does not know.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Response

from sandbox.aws.moto_app import ACCOUNT_ID, WsgiApp
from sandbox.aws.operations import Operation, request_body
from sandbox.settings import SandboxSettings

SERVICE_NAMES = {
    "ec2": "Amazon Elastic Compute Cloud (Amazon EC2)",
    "vpc": "Amazon Virtual Private Cloud (Amazon VPC)",
    "eks": "Amazon Elastic Kubernetes Service (Amazon EKS)",
    "s3": "Amazon Simple Storage Service (Amazon S3)",
}
# SERVICE/CODE: (name, value, global)
QUOTAS: dict[str, tuple[str, float, bool]] = {
    "vpc/L-F678F1CE": ("VPCs per Region", 5, False),
    "vpc/L-A4707A72": ("Internet gateways per Region", 5, False),
    "vpc/L-FE5A380F": ("NAT gateways per Availability Zone", 5, False),
    "vpc/L-E79EC296": ("VPC security groups per Region", 2500, False),
    "vpc/L-1B52E74A": ("Gateway VPC endpoints per Region", 20, False),
    "ec2/L-0263D0A3": ("EC2-VPC Elastic IPs", 5, False),
    "ec2/L-1216C47A": (
        "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
        32,
        False,
    ),
    "ec2/L-34B43A08": (
        "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests",
        32,
        False,
    ),
    "eks/L-1194D53C": ("Clusters", 100, False),
    "s3/L-DC2B2D3D": ("General purpose buckets", 10000, True),
}


class QuotaRules:
    def __init__(self, moto_app: WsgiApp, settings: SandboxSettings):
        self._moto = moto_app
        self._settings = settings

    def __call__(
        self, operation: Operation, environ: dict[str, Any], start_response: Callable
    ) -> Iterable[bytes]:
        if operation.name != "GetServiceQuota":
            return self._moto(environ, start_response)
        try:
            request = json.loads(request_body(environ) or b"{}")
        except ValueError:
            return self._moto(environ, start_response)
        service, code = request.get("ServiceCode", ""), request.get("QuotaCode", "")
        key = f"{service}/{code}"
        if key not in QUOTAS and key not in self._settings.quotas:
            return self._moto(environ, start_response)
        name, value, is_global = QUOTAS.get(key, (code, 0.0, False))
        value = self._settings.quotas.get(key, value)
        quota = {
            "ServiceCode": service,
            "ServiceName": SERVICE_NAMES.get(service, service),
            "QuotaArn": f"arn:aws:servicequotas:{operation.region}:{ACCOUNT_ID}:{key}",
            "QuotaCode": code,
            "QuotaName": name,
            "Value": float(value),
            "Unit": "None",
            "Adjustable": True,
            "GlobalQuota": is_global,
        }
        body = json.dumps({"Quota": quota})
        return Response(body, content_type="application/x-amz-json-1.1")(environ, start_response)
