"""The simulated controllers of the Kubernetes API simulator, run on one thread.

Store events mark objects dirty (each controller says which of its objects an event
concerns); the thread reconciles dirty objects in batches. A reconcile may ask to be called
again after some seconds (latencies, polling the local AWS), kept as one timer per object.
Failures are logged and retried with backoff, so one bad object never stops the others.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from pathlib import Path

from sandbox.cluster import ClusterSource
from sandbox.kube.addons import Addons
from sandbox.kube.addresses import SubnetAddresses
from sandbox.kube.crds import CustomResourceDefinitions
from sandbox.kube.daemonsets import DaemonSets
from sandbox.kube.deployments import Deployments, ReplicaSets
from sandbox.kube.jobs import Jobs
from sandbox.kube.nodes import NodeGroups
from sandbox.kube.objects import Key
from sandbox.kube.pods import PodLifecycle
from sandbox.kube.reconciler import Context, Kinds, Reconciler
from sandbox.kube.runtime import ProcessRuntime
from sandbox.kube.services import Services
from sandbox.kube.statefulsets import StatefulSets
from sandbox.kube.storage import Claims
from sandbox.kube.store import Event, Store
from sandbox.settings import SandboxSettings

log = logging.getLogger(__name__)

TICK_SECONDS = 0.05  # longest wait for work when nothing is due sooner
FIRST_BACKOFF, MAX_BACKOFF = 0.1, 5.0
STOP_TIMEOUT = 5.0

Item = tuple[int, Key]  # (index of the reconciler, key of the object)


class Controllers:
    def __init__(
        self,
        store: Store,
        settings: SandboxSettings,
        cluster_source: ClusterSource | None,
        runtime: ProcessRuntime | None = None,
        kubeconfig: Path | None = None,
    ) -> None:
        self._store = store
        ctx = Context(
            store=store,
            kinds=Kinds.resolve(store.registry),
            settings=settings,
            cluster_source=cluster_source,
            vpc=SubnetAddresses(),
            runtime=runtime,
            kubeconfig=kubeconfig,
        )
        # Node groups first: in a batch, pods then find the nodes that joined in it.
        kinds: list[type[Reconciler]] = [
            NodeGroups,
            Addons,
            Deployments,
            ReplicaSets,
            StatefulSets,
            DaemonSets,
            Jobs,
            PodLifecycle,
            Claims,
            Services,
            CustomResourceDefinitions,
        ]
        self._reconcilers = [kind(ctx) for kind in kinds]
        self._events: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._dirty: dict[Item, None] = {}  # insertion-ordered set
        self._due: dict[Item, float] = {}  # monotonic time of each item's timer
        self._timers: list[tuple[float, Item]] = []  # heap; entries not in _due are stale
        self._failures: dict[Item, int] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the controllers are already started")
        self._store.subscribe(self._on_event)
        for index, reconciler in enumerate(self._reconcilers):
            for key in reconciler.resume():
                self._dirty[(index, key)] = None
        self._thread = threading.Thread(target=self._run, name="kube-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None or self._stopping.is_set():
            return
        self._stopping.set()
        self._store.unsubscribe(self._on_event)
        self._events.put(None)  # wake the thread
        self._thread.join(STOP_TIMEOUT)
        if self._thread.is_alive():
            log.error("the controller thread did not stop within %.0f s", STOP_TIMEOUT)

    def _on_event(self, event: Event) -> None:
        # runs on whichever thread wrote to the store: hand over, never reconcile here
        if not self._stopping.is_set():
            self._events.put(event)

    # -- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wait_for_work()
            self._take_due_timers()
            for item in list(self._dirty):
                if self._stopping.is_set():
                    return
                del self._dirty[item]
                self._reconcile(item)

    def _wait_for_work(self) -> None:
        timeout = 0.0
        if not self._dirty:
            next_due = self._timers[0][0] if self._timers else float("inf")
            timeout = max(0.0, min(TICK_SECONDS, next_due - time.monotonic()))
        try:
            event = self._events.get(timeout=timeout) if timeout else self._events.get_nowait()
        except queue.Empty:
            return
        while event is not None:
            self._dispatch(event)
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return

    def _dispatch(self, event: Event) -> None:
        for index, reconciler in enumerate(self._reconcilers):
            try:
                keys = reconciler.keys_for(event)
                for key in keys:
                    self._dirty[(index, key)] = None
            except Exception:
                log.exception("%s failed to map a %s event", reconciler.name, event.type)

    def _take_due_timers(self) -> None:
        current = time.monotonic()
        while self._timers and self._timers[0][0] <= current:
            due, item = heapq.heappop(self._timers)
            if self._due.get(item) == due:
                del self._due[item]
                self._dirty[item] = None

    def _reconcile(self, item: Item) -> None:
        index, key = item
        reconciler = self._reconcilers[index]
        try:
            again = reconciler.reconcile(key)
        except Exception:
            failures = self._failures.get(item, 0) + 1
            self._failures[item] = failures
            again = min(FIRST_BACKOFF * 2 ** (failures - 1), MAX_BACKOFF)
            log.exception("%s failed on %s/%s; retrying in %.1f s", reconciler.name, *key, again)
        else:
            self._failures.pop(item, None)
        if again is None:
            self._due.pop(item, None)
            return
        due = time.monotonic() + max(again, 0.0)
        self._due[item] = due
        heapq.heappush(self._timers, (due, item))
