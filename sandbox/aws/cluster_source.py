"""The local AWS as the Kubernetes simulator's ``ClusterSource``: node groups and add-ons.

Read in process (no HTTP, no fault injection), with the same simulated statuses the EKS
API reports.
"""

from __future__ import annotations

import time

from sandbox.aws.eks_model import EksModel
from sandbox.cluster import AddonInfo, NodeGroupInfo


class AwsClusterSource:
    def __init__(self, model: EksModel):
        self._model = model

    def node_groups(self) -> list[NodeGroupInfo]:
        """ACTIVE node groups of ACTIVE clusters."""
        found = []
        for cluster in self._model.clusters():
            if cluster["status"] not in ("ACTIVE", "UPDATING"):
                continue
            for group in self._model.active_nodegroups(cluster["region"], cluster["name"]):
                found.append(
                    NodeGroupInfo(
                        cluster=cluster["name"],
                        name=group["nodegroupName"],
                        instance_types=tuple(group.get("instanceTypes") or ()),
                        capacity_type=group.get("capacityType") or "ON_DEMAND",
                        desired_size=int((group.get("scalingConfig") or {}).get("desiredSize", 0)),
                        labels=dict(group.get("labels") or {}),
                        taints=tuple(dict(t) for t in group.get("taints") or ()),
                        network_ready=self._model.network_ready(cluster["region"], cluster["name"]),
                    )
                )
        return found

    def addons(self) -> list[AddonInfo]:
        """Every add-on of every existing cluster, with its current status."""
        found = []
        now = time.time()
        for cluster in self._model.clusters():
            region, name = cluster["region"], cluster["name"]
            addons = self._model.addons(region, name)
            if not addons:
                continue
            has_nodes = self._model.has_nodes(region, name)
            for addon in addons:
                status, _ = addon.status(self._model.latency, has_nodes, now)
                found.append(AddonInfo(name, addon.name, status))
        return found
