"""A Kubernetes API client for the platform's cluster.

From the target's kubeconfig block when it has one; otherwise through EKS itself: the
endpoint and CA from DescribeCluster and a bearer token that is a presigned STS
GetCallerIdentity URL naming the cluster (what ``aws eks get-token`` produces).
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from prefect_kubernetes.credentials import KubernetesClusterConfig

from tasks.aws.clients import AwsClients
from tasks.aws.eks import describe_cluster
from tasks.aws.errors import PermanentAwsError
from tasks.aws.token import exec_user, presigned_token

# Every request to the cluster's API ends: connect within 10 s, the answer within 60 s (an
# unreachable private endpoint or a stalled server must not hang a task).
REQUEST_TIMEOUT = (10.0, 60.0)


class BoundedApiClient(k8s.ApiClient):
    """An ``ApiClient`` whose requests time out unless a call sets its own
    ``_request_timeout``."""

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = REQUEST_TIMEOUT
        return super().call_api(*args, **kwargs)


def eks_token(aws: AwsClients, cluster: str) -> str:
    return presigned_token(aws("sts"), aws.credentials(), aws.region, cluster)


def api_client(
    aws: AwsClients, cluster: str, cluster_config: KubernetesClusterConfig | None
) -> k8s.ApiClient:
    """A fresh client (tokens expire after minutes, so one per task call)."""
    if cluster_config is not None:
        configuration = k8s.Configuration()
        k8s_config.load_kube_config_from_dict(
            cluster_config.config,
            context=cluster_config.context_name,
            client_configuration=configuration,
        )
        return BoundedApiClient(configuration)
    described = _described(aws, cluster)
    configuration = k8s.Configuration()
    configuration.host = described["endpoint"]
    ca = described.get("certificateAuthority", {}).get("data")
    if ca and configuration.host.startswith("https://"):
        with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as handle:
            handle.write(base64.b64decode(ca))
        configuration.ssl_ca_cert = handle.name
    # A key must be there for the client to send one at all; the hook then signs a fresh
    # token before every request: EKS refuses one older than about 15 minutes, and a client
    # may outlive that. Signing is local and cheap.
    configuration.api_key = {"authorization": eks_token(aws, cluster)}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    configuration.refresh_api_key_hook = lambda conf: conf.api_key.update(
        authorization=eks_token(aws, cluster)
    )
    return BoundedApiClient(configuration)


def eks_kubeconfig(
    aws: AwsClients, cluster: str, lifetime: float, cache: Path | None = None
) -> dict[str, Any]:
    """A kubeconfig for helm that reaches the cluster through EKS with credentials made
    fresh by an exec plugin (``tasks.aws.token``), never a token that can expire mid-run.
    ``lifetime``: how long client-go may reuse one (EKS's 15 minutes, at the run's pace);
    ``cache``: where the plugin keeps a token for the next helm process."""
    described = _described(aws, cluster)
    entry: dict[str, Any] = {"server": described["endpoint"]}
    ca = described.get("certificateAuthority", {}).get("data")
    if ca:
        entry["certificate-authority-data"] = ca
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": entry}],
        "users": [{"name": cluster, "user": exec_user(cluster, aws.region, lifetime, cache)}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
        "current-context": cluster,
    }


def _described(aws: AwsClients, cluster: str) -> dict[str, Any]:
    described: dict[str, Any] | None = describe_cluster(aws, cluster)
    if not described or not described.get("endpoint"):
        raise PermanentAwsError(
            "kubernetes access", "NoEndpoint", f"cluster {cluster} has no API endpoint yet"
        )
    return described


def converge_object(
    read: Callable[[], Any],
    create: Callable[[], Any],
    update: Callable[[Any], str | None],
) -> str | None:
    """Read an object; create it when missing, else ``update`` it when it differs (returns
    what changed). A create that finds the object made meanwhile (409 AlreadyExists: an
    earlier attempt whose answer was lost, or a run that was killed) reads it again and
    converges it like any object that existed."""
    for _ in range(2):
        try:
            current = read()
        except ApiException as exc:
            if exc.status != 404:
                raise
            try:
                create()
                return "created"
            except ApiException as exc:
                if exc.status != 409:
                    raise
                continue
        return update(current)
    raise RuntimeError("the object was created and deleted again while being converged")
