"""What every teardown step shares: its budgets, its errors, the managed-namespace label."""

from __future__ import annotations

from tasks.helm import MANAGED_BY

LOAD_BALANCER_SECONDS = 10 * 60  # as long as the ingress gate gives one to appear
NAMESPACE_SECONDS = 5 * 60
RELEASE_SECONDS = 5 * 60  # helm's own default, for a release the catalogue does not list
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
# A delete answers with the object or with a Status, depending on the resource and the
# server's version: the answer is not read.
NO_BODY = {"_preload_content": False}
HELM_RELEASE_ANNOTATIONS = ("meta.helm.sh/release-name", "meta.helm.sh/release-namespace")


class TeardownStuck(RuntimeError):
    """Something did not go within its budget; the message names it and why."""


class LeftBehind(RuntimeError):
    """The final inventory still finds resources of the platform; the message lists them."""


def managed_selector() -> str:
    return ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
