"""What every component task of a run gets: the validated spec, the target and the pace,
with access to AWS, to the cluster's API and (for helm) a kubeconfig file."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as k8s

from blocks.target import PlatformTarget
from blueprint.pace import Pace
from blueprint.spec import PlatformSpec
from tasks.aws.clients import AwsClients, aws_clients
from tasks.aws.token import LIFETIME_SECONDS, save_token
from tasks.kube import api_client, eks_kubeconfig, eks_token

HELM_ENV = "PLATFORM_HELM"


@dataclass(frozen=True)
class RunContext:
    spec: PlatformSpec
    target: PlatformTarget
    pace: Pace

    @property
    def aws(self) -> AwsClients:
        return aws_clients(self.target.aws_credentials, self.target.region)

    def kube(self) -> k8s.ApiClient:
        """A fresh client (EKS tokens expire within minutes, so one per task call)."""
        return api_client(self.aws, self.spec.eks.cluster_name, self.target.cluster_config)

    @contextmanager
    def kubeconfig(self) -> Iterator[Path]:
        """A private kubeconfig file for helm, removed afterwards. Through EKS it holds no
        token but an exec plugin that mints a fresh one, with the AWS credentials in helm's
        environment (never in the file)."""
        from tasks.helm import helm_environment, write_kubeconfig

        config = self.target.cluster_config
        extra: dict[str, str] | None = None
        folder = Path(tempfile.mkdtemp(prefix="helm-"))  # private: 0700
        if config is not None:
            document = {**config.config, "current-context": config.context_name}
        else:
            # At least the pace's shortest budget: a credential minted every moment would
            # cost a process start per request.
            lifetime = self.pace.budget(LIFETIME_SECONDS)
            cluster = self.spec.eks.cluster_name
            # A token for the plugin's first call, minted here in no time; a helm that
            # starts after it has aged gets a fresh one.
            cache = folder / "token.json"
            save_token(cache, eks_token(self.aws, cluster))
            document = eks_kubeconfig(self.aws, cluster, lifetime, cache)
            extra = self.aws.environment()
        path = write_kubeconfig(document, folder)
        reset = helm_environment.set(extra)
        try:
            yield path
        finally:
            helm_environment.reset(reset)
            shutil.rmtree(folder, ignore_errors=True)


def helm_binary() -> Path:
    """``$PLATFORM_HELM`` (set by platformctl and by workers), else helm on the PATH."""
    configured = os.environ.get(HELM_ENV) or shutil.which("helm")
    if not configured:
        raise FileNotFoundError(
            f"no helm binary: set {HELM_ENV} or put helm on the PATH "
            "(platformctl installs one into .tools/bin)"
        )
    return Path(configured)
