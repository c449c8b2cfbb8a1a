"""Updates of EKS clusters, node groups and add-ons, in simulated time.

An update (UpdateClusterConfig, UpdateNodegroupConfig, UpdateNodegroupVersion) is
InProgress until its latency has passed; meanwhile the cluster or node group is UPDATING
and EKS refuses another update of it with ResourceInUseException, so a client must wait
for one update (DescribeUpdate) before it starts the next.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sandbox.aws.errors import AwsError
from sandbox.settings import Latency

# (region, cluster, node group or "" for the cluster itself)
Subject = tuple[str, str, str]


@dataclass
class Update:
    id: str
    type: str  # EndpointAccessUpdate | LoggingUpdate | ConfigUpdate | VersionUpdate | AddonUpdate
    params: list[dict[str, str]]
    created: float
    latency_key: str  # which of the latency profile's durations it takes

    def in_progress(self, latency: Latency, now: float) -> bool:
        return not latency.done(self.latency_key, self.created, now)

    def to_api(self, latency: Latency, started: bool = False) -> dict[str, Any]:
        """The update as DescribeUpdate shows it; ``started``: as the call that began it
        answers (always InProgress on EKS)."""
        running = started or self.in_progress(latency, time.time())
        return {
            "id": self.id,
            "status": "InProgress" if running else "Successful",
            "type": self.type,
            "params": self.params,
            "createdAt": self.created,
            "errors": [],
        }


class Updates:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_subject: dict[Subject, list[Update]] = {}

    def begin(
        self,
        subject: Subject,
        kind: str,
        params: list[dict[str, str]],
        latency_key: str,
        latency: Latency,
    ) -> Update:
        now = time.time()
        with self._lock:
            history = self._by_subject.setdefault(subject, [])
            if history and history[-1].in_progress(latency, now):
                _, cluster, nodegroup = subject
                what = f"Nodegroup {nodegroup}" if nodegroup else f"Cluster {cluster}"
                raise AwsError(
                    409,
                    "ResourceInUseException",
                    f"{what} has an update in progress ({history[-1].id}); wait for it "
                    "to finish before the next one",
                    clusterName=cluster,
                    **({"nodegroupName": nodegroup} if nodegroup else {}),
                )
            update = Update(str(uuid.uuid4()), kind, params, now, latency_key)
            history.append(update)
            return update

    def in_progress(self, subject: Subject, latency: Latency) -> bool:
        with self._lock:
            history = self._by_subject.get(subject)
            return bool(history) and history[-1].in_progress(latency, time.time())

    def find(self, subject: Subject, update_id: str) -> Update | None:
        with self._lock:
            return next((u for u in self._by_subject.get(subject, []) if u.id == update_id), None)

    def forget(self, region: str, cluster: str, nodegroup: str | None = None) -> None:
        """Drops the updates of a deleted cluster (all of them) or node group."""
        with self._lock:
            for subject in list(self._by_subject):
                if subject[:2] == (region, cluster) and nodegroup in (None, subject[2]):
                    del self._by_subject[subject]
