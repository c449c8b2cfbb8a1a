"""EKS bearer tokens: a presigned STS GetCallerIdentity URL naming the cluster, what
``aws eks get-token`` produces. EKS accepts one for about 15 minutes, so nothing keeps a
token: the Python client mints one per request (``tasks/kube.py``), and helm's kubeconfig
runs this module as an exec credential plugin, which client-go calls again once the
credential's expiration has passed.

    python -m tasks.aws.token --cluster NAME --region REGION [--lifetime SECONDS]

prints an ``ExecCredential``; AWS credentials come from the environment (boto3's chain).
Kept to botocore, so that the plugin starts fast.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.signers import RequestSigner

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
PRESIGN_SECONDS = 60  # what aws eks get-token asks for; EKS itself honours ~15 min
# Credentials handed to client-go are renewed before EKS's 15 minutes run out.
LIFETIME_SECONDS = 14 * 60
EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"


def presigned_token(sts: Any, credentials: Any, region: str, cluster: str) -> str:
    signer = RequestSigner(
        sts.meta.service_model.service_id, region, "sts", "v4", credentials, sts.meta.events
    )
    request = {
        "method": "GET",
        "url": f"https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
        "body": {},
        "headers": {CLUSTER_HEADER: cluster},
        "context": {},
    }
    url = signer.generate_presigned_url(
        request, region_name=region, expires_in=PRESIGN_SECONDS, operation_name=""
    )
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def exec_credential(token: str, lifetime: float) -> dict[str, Any]:
    expires = datetime.now(UTC) + timedelta(seconds=lifetime)
    return {
        "kind": "ExecCredential",
        "apiVersion": EXEC_API_VERSION,
        "spec": {},
        "status": {
            "token": token,
            "expirationTimestamp": expires.isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
        },
    }


def exec_user(cluster: str, region: str, lifetime: float) -> dict[str, Any]:
    """The kubeconfig ``user`` that runs this module for every fresh credential."""
    return {
        "exec": {
            "apiVersion": EXEC_API_VERSION,
            "command": sys.executable,
            "args": [
                "-m",
                "tasks.aws.token",
                "--cluster",
                cluster,
                "--region",
                region,
                "--lifetime",
                f"{lifetime:g}",
            ],
            "interactiveMode": "Never",
            "provideClusterInfo": False,
        }
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.aws.token")
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--lifetime", type=float, default=LIFETIME_SECONDS)
    args = parser.parse_args(argv)
    import boto3  # here: only the plugin needs a session of its own

    session = boto3.Session(region_name=args.region)
    sts = session.client("sts")
    token = presigned_token(sts, session.get_credentials(), args.region, args.cluster)
    json.dump(exec_credential(token, args.lifetime), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
