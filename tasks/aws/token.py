"""EKS bearer tokens: a presigned STS GetCallerIdentity URL naming the cluster, what
``aws eks get-token`` produces. EKS accepts one for about 15 minutes, so nothing keeps a
token: the Python client mints one per request (``tasks/kube.py``), and helm's kubeconfig
runs this module as an exec credential plugin, which client-go calls again once the
credential's expiration has passed.

    python -m tasks.aws.token --cluster NAME --region REGION [--lifetime SECONDS] [--cache FILE]

prints an ``ExecCredential``; AWS credentials come from the environment (boto3's chain).
Every helm process calls the plugin at least once, so it is kept fast: with ``--cache``, a
token minted less than ``--lifetime`` ago (by the run, or an earlier call) is handed out
again without importing boto3, and a stale one is replaced.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
PRESIGN_SECONDS = 60  # what aws eks get-token asks for; EKS itself honours ~15 min
# Credentials handed to client-go are renewed before EKS's 15 minutes run out.
LIFETIME_SECONDS = 14 * 60
EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"


def presigned_token(sts: Any, credentials: Any, region: str, cluster: str) -> str:
    from botocore.signers import RequestSigner  # not on the plugin's cached path

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


def save_token(cache: Path, token: str) -> None:
    """Keep a token minted now where the plugin looks first (private, replaced whole)."""
    staged = cache.with_suffix(".new")
    staged.write_text(json.dumps({"token": token, "minted": time.time()}))
    os.chmod(staged, 0o600)
    os.replace(staged, cache)


def cached_token(cache: Path, lifetime: float) -> tuple[str, float] | None:
    """(token, seconds left) of a cached token younger than ``lifetime``."""
    try:
        kept = json.loads(cache.read_text())
    except (OSError, ValueError):
        return None
    left = lifetime - (time.time() - float(kept.get("minted", 0)))
    return (kept["token"], left) if left > lifetime / 10 else None


def exec_user(
    cluster: str, region: str, lifetime: float, cache: Path | None = None
) -> dict[str, Any]:
    """The kubeconfig ``user`` that runs this module for every fresh credential."""
    cached = ["--cache", str(cache)] if cache else []
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
                *cached,
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
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args(argv)
    found = cached_token(args.cache, args.lifetime) if args.cache else None
    if found is not None:
        json.dump(exec_credential(*found), sys.stdout)
        return 0
    import boto3  # here: only the plugin needs a session of its own

    session = boto3.Session(region_name=args.region)
    sts = session.client("sts")
    token = presigned_token(sts, session.get_credentials(), args.region, args.cluster)
    if args.cache:
        save_token(args.cache, token)
    json.dump(exec_credential(token, args.lifetime), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
