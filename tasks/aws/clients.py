"""boto3 clients for a target: one session, adaptive retries, shared hooks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from botocore.config import Config
from prefect_aws import AwsCredentials

from tasks.aws.errors import aws_call

# Adaptive mode: client-side rate limiting plus retries of throttling and 5xx inside each
# call, before anything reaches the task's own (transient-only) retries.
RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=10,
    read_timeout=60,
)


class AwsClients:
    """Thread-safe cache of boto3 clients made from one credentials block and region.

    boto3 clients are thread-safe, sessions are not, so clients are created under a lock.
    ``register`` adds an event hook (e.g. ``before-call``) to every client, present and
    future: tests count mutating calls through it.
    """

    def __init__(self, credentials: AwsCredentials, region: str):
        self._session = credentials.get_boto3_session()
        params = credentials.aws_client_parameters.get_params_override()
        user_config = params.pop("config", None)
        self._params: dict[str, Any] = {
            **params,
            "region_name": region,
            "config": user_config.merge(RETRY_CONFIG) if user_config else RETRY_CONFIG,
        }
        self.region = region
        self._clients: dict[str, Any] = {}
        self._hooks: list[tuple[str, Callable[..., Any]]] = []
        self._lock = threading.Lock()
        self._account_id: str | None = None

    def __call__(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = self._session.client(service, **self._params)
                for event, handler in self._hooks:
                    client.meta.events.register(event, handler)
                self._clients[service] = client
            return client

    def register(self, event: str, handler: Callable[..., Any]) -> None:
        with self._lock:
            self._hooks.append((event, handler))
            for client in self._clients.values():
                client.meta.events.register(event, handler)

    def credentials(self) -> Any:
        """botocore credentials of the session (for signing outside a client call)."""
        return self._session.get_credentials()

    def account_id(self) -> str:
        """The account the credentials act in (STS GetCallerIdentity, asked once)."""
        if self._account_id is None:
            # A client like every other (its hooks see the call); asked outside the lock,
            # which creating that client takes. Two threads may both ask: same answer.
            with aws_call("sts:GetCallerIdentity"):
                self._account_id = self("sts").get_caller_identity()["Account"]
        return self._account_id

    def environment(self) -> dict[str, str]:
        """The credentials, region and endpoint as the environment variables boto3 reads:
        for a child process (helm's EKS credential plugin), never for a file or a log."""
        frozen = self.credentials().get_frozen_credentials()
        env = {
            "AWS_ACCESS_KEY_ID": frozen.access_key,
            "AWS_SECRET_ACCESS_KEY": frozen.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }
        if frozen.token:
            env["AWS_SESSION_TOKEN"] = frozen.token
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        return env

    @property
    def endpoint_url(self) -> str | None:
        return self._params.get("endpoint_url")


_cache: dict[tuple[int, str], AwsClients] = {}
_cache_lock = threading.Lock()


def aws_clients(credentials: AwsCredentials, region: str) -> AwsClients:
    """The clients for a credentials block and region, shared by every task of a process."""
    key = (hash(credentials), region)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = AwsClients(credentials, region)
        return _cache[key]
