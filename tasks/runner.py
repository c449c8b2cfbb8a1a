"""Where this run executes, as far as reaching the cluster's API goes.

A private-only endpoint answers only inside the cluster's VPC. A runner outside it (a
laptop, CI, a worker in another cluster) builds the platform through public access opened
for ``eks.build_access_cidrs`` alone. Once the whole platform is up, it is handed to its
in-cluster worker (``runner.hand_over``): public access goes off, and later runs execute
there, in flow-run pods that carry ``PLATFORM_RUNNER=in-cluster``.
"""

from __future__ import annotations

import os

from blueprint.spec import PlatformSpec, work_pool

RUNNER_ENV = "PLATFORM_RUNNER"
IN_CLUSTER = "in-cluster"


def in_cluster() -> bool:
    return os.environ.get(RUNNER_ENV) == IN_CLUSTER


def building_from_outside(spec: PlatformSpec) -> bool:
    """Public access is opened for the build CIDRs: the endpoint is private-only and this
    run is outside the VPC."""
    eks = spec.eks
    return not eks.endpoint_public_access and bool(eks.build_access_cidrs) and not in_cluster()


def reach_problems(spec: PlatformSpec) -> list[str]:
    """Why this run could never reach the cluster's API (checked before anything starts)."""
    eks = spec.eks
    if in_cluster() or eks.endpoint_public_access or eks.build_access_cidrs:
        return []
    return [
        "eks: the cluster's API is private-only (endpoint_public_access: false) and this run "
        f"executes outside its VPC ({RUNNER_ENV} is not {IN_CLUSTER!r}), where nothing "
        "reaches it. List the runner's public addresses in eks.build_access_cidrs (public "
        "access for them alone while the platform is built), or run it from the platform's "
        "in-cluster work pool; see docs/aws-account.md"
    ]


def handed_over_problems(spec: PlatformSpec, handed_over: bool) -> list[str]:
    """Why a run from outside must not go on with a cluster handed to its worker."""
    if in_cluster() or not handed_over:
        return []
    return [
        f"eks: cluster {spec.eks.cluster_name} is in the hands of its in-cluster worker: "
        "public access is off, so its API answers only inside the VPC, and this run "
        f"executes outside it. Run it on the work pool {work_pool(spec)!r} (a deployment "
        "of that pool), or set runner.hand_over: false to build from outside again; see "
        "docs/aws-account.md"
    ]
