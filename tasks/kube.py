"""A Kubernetes API client for the platform's cluster.

From the target's kubeconfig block when it has one; otherwise through EKS itself: the
endpoint and CA from DescribeCluster and a bearer token that is a presigned STS
GetCallerIdentity URL naming the cluster (what ``aws eks get-token`` produces).
"""

from __future__ import annotations

import base64
import tempfile
from typing import Any

from botocore.signers import RequestSigner
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from prefect_kubernetes.credentials import KubernetesClusterConfig

from tasks.aws.clients import AwsClients
from tasks.aws.eks import describe_cluster
from tasks.aws.errors import PermanentAwsError

TOKEN_PREFIX = "k8s-aws-v1."
TOKEN_SECONDS = 60


def eks_token(aws: AwsClients, cluster: str) -> str:
    sts = aws("sts")
    signer = RequestSigner(
        sts.meta.service_model.service_id,
        aws.region,
        "sts",
        "v4",
        aws.credentials(),
        sts.meta.events,
    )
    request = {
        "method": "GET",
        "url": f"https://sts.{aws.region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
        "body": {},
        "headers": {"x-k8s-aws-id": cluster},
        "context": {},
    }
    url = signer.generate_presigned_url(
        request, region_name=aws.region, expires_in=TOKEN_SECONDS, operation_name=""
    )
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def api_client(
    aws: AwsClients, cluster: str, cluster_config: KubernetesClusterConfig | None
) -> k8s.ApiClient:
    """A fresh client (tokens expire after minutes, so one per task call)."""
    if cluster_config is not None:
        return k8s_config.new_client_from_config_dict(
            cluster_config.config, context=cluster_config.context_name
        )
    described: dict[str, Any] | None = describe_cluster(aws, cluster)
    if not described or not described.get("endpoint"):
        raise PermanentAwsError(
            "kubernetes access", "NoEndpoint", f"cluster {cluster} has no API endpoint yet"
        )
    configuration = k8s.Configuration()
    configuration.host = described["endpoint"]
    ca = described.get("certificateAuthority", {}).get("data")
    if ca and configuration.host.startswith("https://"):
        with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as handle:
            handle.write(base64.b64decode(ca))
        configuration.ssl_ca_cert = handle.name
    configuration.api_key = {"authorization": eks_token(aws, cluster)}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return k8s.ApiClient(configuration)
