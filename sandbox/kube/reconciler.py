"""What every simulated controller shares: the resource types, the store and the settings.

A controller is level-triggered like the real ones: store events only say *which* objects to
look at again (``keys_for``); ``reconcile`` reads the current state and converges it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sandbox.cluster import ClusterSource
from sandbox.kube.addresses import SubnetAddresses
from sandbox.kube.objects import Key, key_of
from sandbox.kube.resources import Registry, ResourceType
from sandbox.kube.runtime import ProcessRuntime
from sandbox.kube.store import Event, Store
from sandbox.settings import SandboxSettings


@dataclass(frozen=True)
class Kinds:
    """The resource types the controllers read and write, resolved once from the registry."""

    namespace: ResourceType
    node: ResourceType
    pod: ResourceType
    service: ResourceType
    endpoints: ResourceType
    config_map: ResourceType
    secret: ResourceType
    service_account: ResourceType
    pvc: ResourceType
    pv: ResourceType
    deployment: ResourceType
    replica_set: ResourceType
    stateful_set: ResourceType
    daemon_set: ResourceType
    job: ResourceType
    crd: ResourceType
    csi_driver: ResourceType
    storage_class: ResourceType

    @classmethod
    def resolve(cls, registry: Registry) -> Kinds:
        wanted = {
            "namespace": ("v1", "Namespace"),
            "node": ("v1", "Node"),
            "pod": ("v1", "Pod"),
            "service": ("v1", "Service"),
            "endpoints": ("v1", "Endpoints"),
            "config_map": ("v1", "ConfigMap"),
            "secret": ("v1", "Secret"),
            "service_account": ("v1", "ServiceAccount"),
            "pvc": ("v1", "PersistentVolumeClaim"),
            "pv": ("v1", "PersistentVolume"),
            "deployment": ("apps/v1", "Deployment"),
            "replica_set": ("apps/v1", "ReplicaSet"),
            "stateful_set": ("apps/v1", "StatefulSet"),
            "daemon_set": ("apps/v1", "DaemonSet"),
            "job": ("batch/v1", "Job"),
            "crd": ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            "csi_driver": ("storage.k8s.io/v1", "CSIDriver"),
            "storage_class": ("storage.k8s.io/v1", "StorageClass"),
        }
        found = {field: registry.by_kind(*api_kind) for field, api_kind in wanted.items()}
        missing = [f"{a}/{k}" for f, (a, k) in wanted.items() if found[f] is None]
        if missing:
            raise LookupError(f"the registry lacks resource types {missing}")
        return cls(**found)


@dataclass
class Context:
    store: Store
    kinds: Kinds
    settings: SandboxSettings
    cluster_source: ClusterSource | None
    vpc: SubnetAddresses  # node and pod IPs
    runtime: ProcessRuntime | None = None  # runs the pods that run Prefect; None: all simulated
    kubeconfig: Path | None = None  # the simulator's, given to pod processes


class Reconciler(ABC):
    """One simulated controller. ``resume`` runs in ``Controllers.start``; the other methods
    run on the controllers' thread, so a controller's own state needs no lock."""

    name = "reconciler"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.kinds = ctx.kinds

    def resume(self) -> Iterable[Key]:
        """Learn what already exists (e.g. addresses in use); return the keys to reconcile."""
        return ()

    def keys_for(self, event: Event) -> Iterable[Key]:
        """Keys of this controller's objects that a store event may affect."""
        return ()

    @abstractmethod
    def reconcile(self, key: Key) -> float | None:
        """Converge one object; return seconds after which to look again, or None."""

    def _all_keys(self, rt: ResourceType) -> list[Key]:
        items, _ = self.store.list(rt)
        return [key_of(item) for item in items]
