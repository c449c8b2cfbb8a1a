"""The local EKS control plane: moto's clusters and node groups, in simulated time, and add-ons.

moto makes clusters and node groups ACTIVE at once. Here a cluster is CREATING until the
latency profile's "eks_cluster" time has passed since it was created (then ACTIVE, or FAILED
when the ``eks-create-fails`` fault hit it), a node group is CREATING for "nodegroup", and
the add-ons live in this model. Statuses are derived from the clock when asked, so nothing
runs in the background.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sandbox.aws.access_entries import AccessEntries
from sandbox.aws.addons import Addon, apply_update, new_addon
from sandbox.aws.eks_updates import Update, Updates
from sandbox.aws.errors import AwsError
from sandbox.aws.moto_eks import MotoEks
from sandbox.settings import FaultBook, Latency, SandboxSettings


@dataclass(frozen=True)
class ClusterLife:
    created: float
    fails: bool  # hit by eks-create-fails: FAILED once its creation time has passed
    # bootstrapSelfManagedAddons (EKS's default): the cluster comes with a self-managed CNI
    self_managed_addons: bool = True


def cluster_not_found(name: str) -> AwsError:
    return AwsError(
        404, "ResourceNotFoundException", f"No cluster found for name: {name}.", clusterName=name
    )


def addon_not_found(cluster: str, addon: str) -> AwsError:
    return AwsError(
        404,
        "ResourceNotFoundException",
        f"No addon: {addon} found in cluster: {cluster}",
        clusterName=cluster,
        addonName=addon,
    )


JOIN_FAILURE = {
    "code": "NodeCreationFailure",
    "message": "Instances failed to join the kubernetes cluster",
    "resourceIds": [],
}


class EksModel:
    def __init__(self, settings: SandboxSettings, moto: MotoEks):
        self.settings = settings
        self.moto = moto
        self._lock = threading.Lock()
        self._nodegroup_templates: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._clusters: dict[tuple[str, str], ClusterLife] = {}
        self._nodegroups: dict[tuple[str, str, str], float] = {}
        self._joined: dict[tuple[str, str, str], bool] = {}  # did its instances join?
        self._addons: dict[tuple[str, str, str], Addon] = {}
        self._regions: set[str] = set()
        self.updates = Updates()
        self.access = AccessEntries()

    @property
    def latency(self) -> Latency:
        return self.settings.latency  # read per use: the control API may change it

    @property
    def faults(self) -> FaultBook:
        return self.settings.faults

    # ----------------------------------------------------------------- clusters

    def saw_region(self, region: str) -> None:
        with self._lock:
            self._regions.add(region)

    def regions(self) -> list[str]:
        with self._lock:
            return sorted(self._regions)

    def cluster_created(self, region: str, name: str, self_managed_addons: bool = True) -> None:
        fails = self.faults.fire("eks-create-fails", name)
        with self._lock:
            self._clusters[(region, name)] = ClusterLife(time.time(), fails, self_managed_addons)
            self._forget(region, name)

    def cluster_deleted(self, region: str, name: str) -> None:
        with self._lock:
            self._clusters.pop((region, name), None)
            self._forget(region, name)

    def _forget(self, region: str, cluster: str) -> None:
        """Drops what belonged to an earlier cluster of that name (caller holds the lock)."""
        self.updates.forget(region, cluster)
        for key in [k for k in self._nodegroups if k[:2] == (region, cluster)]:
            del self._nodegroups[key]
            self._joined.pop(key, None)
        for key in [k for k in self._addons if k[:2] == (region, cluster)]:
            del self._addons[key]

    def cluster_status(self, region: str, name: str, moto_status: str = "ACTIVE") -> str:
        with self._lock:
            life = self._clusters.get((region, name))
        if life is None or moto_status != "ACTIVE":
            return moto_status
        if not self.latency.done("eks_cluster", life.created):
            return "CREATING"
        if life.fails:
            return "FAILED"
        return (
            "UPDATING" if self.updates.in_progress((region, name, ""), self.latency) else "ACTIVE"
        )

    def cluster(self, region: str, name: str) -> dict[str, Any] | None:
        """moto's view of a cluster with its simulated status; None if it does not exist."""
        cluster = self.moto.cluster(region, name)
        if cluster is not None:
            cluster["status"] = self.cluster_status(region, name, cluster.get("status", "ACTIVE"))
        return cluster

    def existing_cluster(self, region: str, name: str) -> dict[str, Any]:
        cluster = self.cluster(region, name)
        if cluster is None:
            raise cluster_not_found(name)
        return cluster

    def active_cluster(self, region: str, name: str) -> dict[str, Any]:
        cluster = self.existing_cluster(region, name)
        if cluster["status"] not in ("ACTIVE", "UPDATING"):
            raise AwsError(
                400,
                "InvalidRequestException",
                f"Cluster '{name}' is not in ACTIVE status (it is {cluster['status']})",
                clusterName=name,
            )
        return cluster

    def clusters(self) -> list[dict[str, Any]]:
        """Every cluster in the regions clients have used, each with a "region" key."""
        found = []
        for region in self.regions():
            for name in self.moto.cluster_names(region):
                cluster = self.cluster(region, name)
                if cluster is not None:
                    found.append({**cluster, "region": region})
        return found

    # -------------------------------------------------------------- node groups

    def nodegroup_created(self, region: str, cluster: str, name: str) -> None:
        with self._lock:
            self._nodegroups[(region, cluster, name)] = time.time()

    def nodegroup_deleted(self, region: str, cluster: str, name: str) -> None:
        with self._lock:
            self._nodegroups.pop((region, cluster, name), None)
            self._joined.pop((region, cluster, name), None)
            self._nodegroup_templates.pop((region, cluster, name), None)
        self.updates.forget(region, cluster, name)

    def begin_update(
        self,
        region: str,
        cluster: str,
        nodegroup: str | None,
        kind: str,
        params: list[dict[str, str]],
        latency_key: str,
    ) -> Update:
        """A cluster or node group update; ResourceInUseException while one is going on."""
        subject = (region, cluster, nodegroup or "")
        return self.updates.begin(subject, kind, params, latency_key, self.latency)

    def nodegroup_version_updated(
        self, region: str, cluster: str, name: str, template: dict[str, Any]
    ) -> None:
        """moto lacks UpdateNodegroupVersion: the new launch template version is kept here
        and shown on DescribeNodegroup."""
        with self._lock:
            self._nodegroup_templates[(region, cluster, name)] = dict(template)

    def nodegroup_template(self, region: str, cluster: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._nodegroup_templates.get((region, cluster, name))

    def nodegroup_status(
        self, region: str, cluster: str, name: str, moto_status: str = "ACTIVE"
    ) -> str:
        with self._lock:
            created = self._nodegroups.get((region, cluster, name))
        if created is None or moto_status != "ACTIVE":
            return moto_status
        if not self.latency.done("nodegroup", created):
            return "CREATING"
        joined = self._instances_joined(region, cluster, name, created)
        status = {True: "ACTIVE", False: "CREATE_FAILED", None: "CREATING"}[joined]
        if status == "ACTIVE" and self.updates.in_progress((region, cluster, name), self.latency):
            return "UPDATING"
        return status

    def nodegroup_health(self, region: str, cluster: str, name: str) -> list[dict[str, Any]]:
        with self._lock:
            joined = self._joined.get((region, cluster, name), True)
        return [] if joined else [dict(JOIN_FAILURE)]

    def _instances_joined(
        self, region: str, cluster: str, name: str, created: float
    ) -> bool | None:
        """Whether the group's instances became Ready nodes; None while undecided. With
        the cluster's default add-ons off (``bootstrapSelfManagedAddons`` false) a node has
        no CNI, and stays NotReady, until the vpc-cni add-on is ACTIVE; EKS fails a group
        whose nodes are not Ready within its join budget with NodeCreationFailure."""
        key = (region, cluster, name)
        with self._lock:
            if key in self._joined:
                return self._joined[key]
        if self.network_ready(region, cluster):
            joined = True
        elif self.latency.done("node_join", created):
            joined = False
        else:
            return None
        with self._lock:
            return self._joined.setdefault(key, joined)

    def network_ready(self, region: str, cluster: str) -> bool:
        """Whether the cluster's nodes have a CNI: the self-managed one a cluster gets by
        default, or else its vpc-cni add-on ACTIVE (a DaemonSet: it needs no nodes for
        that)."""
        with self._lock:
            life = self._clusters.get((region, cluster))
            if life is None or life.self_managed_addons:
                return True
            vpc_cni = self._present((region, cluster, "vpc-cni"))
        if vpc_cni is None:
            return False
        return vpc_cni.status(self.latency, True, time.time())[0] == "ACTIVE"

    def active_nodegroups(self, region: str, cluster: str) -> list[dict[str, Any]]:
        groups = []
        for group in self.moto.nodegroups(region, cluster):
            name = group["nodegroupName"]
            status = self.nodegroup_status(region, cluster, name, group.get("status", "ACTIVE"))
            if status in ("ACTIVE", "UPDATING"):  # an update keeps the group's nodes
                groups.append({**group, "status": status})
        return groups

    def has_nodes(self, region: str, cluster: str) -> bool:
        return any(
            (group.get("scalingConfig") or {}).get("desiredSize", 0) > 0
            for group in self.active_nodegroups(region, cluster)
        )

    # ------------------------------------------------------------------ add-ons

    def create_addon(self, region: str, cluster_name: str, request: dict[str, Any]) -> Addon:
        cluster = self.active_cluster(region, cluster_name)
        addon = new_addon(region, cluster, request)
        key = (region, cluster_name, addon.name)
        with self._lock:
            if self._present(key):
                raise AwsError(
                    409,
                    "ResourceInUseException",
                    "Addon already exists.",
                    clusterName=cluster_name,
                    addonName=addon.name,
                )
            addon.degraded = self.faults.fire("addon-degraded", addon.name)
            self._addons[key] = addon
        return addon

    def update_addon(
        self, region: str, cluster_name: str, name: str, request: dict[str, Any]
    ) -> Update:
        cluster = self.existing_cluster(region, cluster_name)
        addon = self.addon(region, cluster_name, name)
        with self._lock:
            if addon.deleted is not None or not addon.settled(self.latency, time.time()):
                status = "DELETING" if addon.deleted is not None else addon.changing
                raise AwsError(
                    409,
                    "ResourceInUseException",
                    f"Addon {name} cannot be updated as it is currently in {status} state",
                    clusterName=cluster_name,
                    addonName=name,
                )
            update = apply_update(addon, cluster, request)
            addon.degraded = self.faults.fire("addon-degraded", name)
        return update

    def delete_addon(self, region: str, cluster_name: str, name: str) -> Addon:
        self.existing_cluster(region, cluster_name)
        addon = self.addon(region, cluster_name, name)
        with self._lock:
            if addon.deleted is None:
                addon.deleted = time.time()
        return addon

    def addon(self, region: str, cluster_name: str, name: str) -> Addon:
        """An add-on of an existing cluster, DELETING ones included."""
        with self._lock:
            present = self._present((region, cluster_name, name))
        if present is None:
            raise addon_not_found(cluster_name, name)
        return present

    def addons(self, region: str, cluster_name: str) -> list[Addon]:
        with self._lock:
            keys = sorted(k for k in self._addons if k[:2] == (region, cluster_name))
            return [a for a in (self._present(k) for k in keys) if a is not None]

    def _present(self, key: tuple[str, str, str]) -> Addon | None:
        """The add-on under ``key`` unless its deletion has finished (caller holds the lock)."""
        addon = self._addons.get(key)
        if addon is not None and addon.gone(self.latency, time.time()):
            del self._addons[key]
            return None
        return addon

    def addon_view(self, addon: Addon) -> dict[str, Any]:
        has_nodes = self.has_nodes(addon.region, addon.cluster)
        return addon.to_api(self.latency, has_nodes, time.time())
