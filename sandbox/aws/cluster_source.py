"""The local AWS as the Kubernetes simulator's ``ClusterSource``: node groups and add-ons,
endpoints and OIDC issuers, its own URL for pods, and the EBS volumes the simulated CSI
driver makes.

Read and written in process (no HTTP, no fault injection), with the same simulated statuses
the EKS API reports.
"""

from __future__ import annotations

import time

from sandbox.aws.ec2_rules import ec2_backend
from sandbox.aws.eks_api import endpoint_access
from sandbox.aws.eks_model import EksModel
from sandbox.cluster import AccessGrant, AddonInfo, EndpointInfo, NodeGroupInfo


class AwsClusterSource:
    def __init__(self, model: EksModel, url: str | None = None):
        self._model = model
        self._url = url
        self._regions: dict[str, str] = {}  # volume id -> region, for the volumes made here

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
                        region=cluster["region"],
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

    def create_volume(self, size_gib: int, tags: dict[str, str]) -> str | None:
        """A gp3 volume in the first zone of the (first) cluster's region, tagged as the
        claim's StorageClass asks (``tagSpecification_N`` parameters)."""
        regions = [c["region"] for c in self._model.clusters()]
        if not regions:
            return None
        backend = ec2_backend(regions[0])
        volume = backend.create_volume(size_gib, f"{regions[0]}a", volume_type="gp3")
        backend.create_tags([volume.id], tags)
        self._regions[volume.id] = regions[0]
        return volume.id

    def delete_volume(self, volume_id: str) -> None:
        region = self._regions.pop(volume_id, None)
        if region is not None:
            ec2_backend(region).volumes.pop(volume_id, None)

    def access(self, region: str, cluster: str, access_key: str) -> AccessGrant:
        return self._model.access.grant(region, cluster, access_key)

    def endpoint(self, region: str, cluster: str) -> EndpointInfo | None:
        found = self._model.cluster(region, cluster)
        if found is None or found["status"] not in ("ACTIVE", "UPDATING"):
            return None
        vpc = endpoint_access(found.get("resourcesVpcConfig") or {})
        return EndpointInfo(
            vpc["endpointPublicAccess"],
            vpc["endpointPrivateAccess"],
            tuple(vpc.get("publicAccessCidrs") or ()),
        )

    def oidc_issuer(self, region: str, cluster: str) -> str | None:
        found = self._model.cluster(region, cluster)
        return ((found or {}).get("identity") or {}).get("oidc", {}).get("issuer")

    def aws_endpoint(self) -> str | None:
        return self._url
