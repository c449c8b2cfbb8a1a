"""The simulator's object store: an in-memory etcd with the API server's write semantics.

Stored objects are never mutated in place (every write stores a fresh copy), so the change
history can keep references to them; callers always receive copies.
"""

from __future__ import annotations

import logging
import queue
import random
import re
import string
import threading
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sandbox.kube import defaults
from sandbox.kube.errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
)
from sandbox.kube.resources import Registry, ResourceType, builtin_registry, crd_resource_types
from sandbox.kube.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)

log = logging.getLogger(__name__)

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
HISTORY_SIZE = 20_000  # changes kept for watches that resume from a resourceVersion
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the API server's generateName alphabet
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Metadata the server owns: kept from the stored object whatever an update sends.
_SERVER_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "selfLink")


class Event(NamedTuple):
    type: str  # "ADDED" | "MODIFIED" | "DELETED"
    resource: ResourceType
    obj: dict  # a copy of the object after the change (before deletion for DELETED)


class _Change(NamedTuple):
    rv: int
    type: str
    resource: ResourceType
    obj: dict  # the stored (never mutated) object
    old: dict | None  # the object before the change, for selector transitions


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (several times faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def now_timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_version(rt: ResourceType, obj: dict) -> dict:
    """A copy of ``obj`` as the given version serves it (versions share one schema here)."""
    out: dict[str, Any] = {"apiVersion": rt.api_version, "kind": rt.kind}
    for key, value in obj.items():
        if key not in out:
            out[key] = copy_json(value)
    return out


def _body(obj: dict) -> dict:
    """What counts for metadata.generation: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class WatchClosed(Exception):
    """The watch was closed (by its owner or because the store shut down)."""


_CLOSED = object()


class Watch:
    """A stream of changes to one resource type, filtered like an API watch."""

    def __init__(
        self,
        store: Store,
        rt: ResourceType,
        namespace: str | None,
        name: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
    ):
        self._store = store
        self.resource = rt
        self._namespace = namespace
        self._name = name
        self._labels = labels
        self._fields = fields
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.closed = False
        self.start_rv = "0"  # the resourceVersion live changes follow
        self.initial_count = 0  # ADDED events for the objects that existed at the start

    def _selects(self, obj: dict | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self._namespace is not None and meta.get("namespace") != self._namespace:
            return False
        if self._name is not None and meta.get("name") != self._name:
            return False
        return self._labels.matches(meta.get("labels")) and self._fields.matches(obj)

    def _offer(self, change: _Change) -> None:
        """Queue a change if it concerns this watch; called with the store lock held."""
        if change.resource.storage_key != self.resource.storage_key:
            return
        now, before = self._selects(change.obj), self._selects(change.old)
        kind = change.type
        if kind == "MODIFIED":
            # Entering or leaving the selection reads as ADDED / DELETED, as in the API server.
            if now and not before:
                kind = "ADDED"
            elif before and not now:
                kind = "DELETED"
            elif not now:
                return
        elif not now:
            return
        self._queue.put((kind, change.obj))

    def next(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` seconds; raises WatchClosed once closed."""
        if self.closed:
            raise WatchClosed()
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _CLOSED:
            self.closed = True
            raise WatchClosed()
        kind, obj = item
        return Event(kind, self.resource, _with_version(self.resource, obj))

    def caught_up(self) -> str | None:
        """The store's resourceVersion if every change so far was taken from this watch."""
        return self._store._caught_up(self)

    def close(self) -> None:
        self._store._unwatch(self)
        self._queue.put(_CLOSED)


class Store:
    """Thread-safe in-memory object store with resourceVersions, watches and GC."""

    def __init__(self, registry: Registry | None = None, history_size: int = HISTORY_SIZE):
        self.registry = registry if registry is not None else builtin_registry()
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str], dict[tuple[str, str], dict]] = {}
        self._rv = 0
        self._history: deque[_Change] = deque()
        self._history_size = history_size
        self._compacted_rv = 0  # changes up to this resourceVersion are no longer kept
        self._watches: set[Watch] = set()
        self._subscribers: list[Callable[[Event], None]] = []
        self._pending: deque[Event] = deque()
        self._delivering = threading.Lock()
        self._allocator = defaults.Allocator()
        self._applied: dict[tuple[str, str], dict] = {}  # (uid, manager) -> last applied config
        # owner uid -> {(storage key, object key): type} of the objects naming it as owner
        self._dependants: dict[
            str, dict[tuple[tuple[str, str], tuple[str, str]], ResourceType]
        ] = {}
        self._bootstrap()

    # -- reads ----------------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict | None:
        with self._lock:
            obj = self._bucket(rt).get(self._key(rt, namespace, name))
            return _with_version(rt, obj) if obj is not None else None

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict], str]:
        labels, fields = _selectors(label_selector, field_selector)
        with self._lock:
            found = [
                obj
                for (ns, _), obj in sorted(self._bucket(rt).items())
                if (namespace is None or ns == namespace)
                and labels.matches(obj["metadata"].get("labels"))
                and fields.matches(obj)
            ]
            rv = str(self._rv)
        return [_with_version(rt, obj) for obj in found], rv

    # -- writes ---------------------------------------------------------------------------

    def create(self, rt: ResourceType, obj: dict, dry_run: bool = False) -> dict:
        """Store a new object; sets uid, resourceVersion, generation 1, creationTimestamp.

        The given ``status`` is kept (controllers create objects with status); the HTTP
        layer drops it for kinds with a status subresource, as the API server does.
        """
        obj = copy_json(obj)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        namespace = self._namespace_of(rt, meta)
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choice(_GENERATE_ALPHABET) for _ in range(5))
            meta["name"] = f"{meta['generateName']}{suffix}"
        name = meta.get("name") or ""
        _validate_name(rt, name)
        with self._lock:
            if namespace is not None and ("", namespace) not in self._bucket(NAMESPACES):
                raise ApiError(
                    404,
                    "NotFound",
                    f'namespaces "{namespace}" not found',
                    {"name": namespace, "kind": "namespaces"},
                )
            key = (namespace or "", name)
            if key in self._bucket(rt):
                raise already_exists(rt, name)
            obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
            for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
                meta.pop(field, None)
            meta["uid"] = str(uuid.uuid4())
            meta["generation"] = 1
            meta["creationTimestamp"] = now_timestamp()
            self._default(rt, obj, None)
            if dry_run:
                return _with_version(rt, obj)
            if _is_crd(rt):
                self._register_crd(obj, None)
            self._commit(rt, key, obj, None, "ADDED")
        self._deliver()
        return _with_version(rt, obj)

    def replace(
        self, rt: ResourceType, obj: dict, subresource: str | None = None, dry_run: bool = False
    ) -> dict:
        """Update an object (PUT). A stale metadata.resourceVersion is a 409 Conflict.

        The main resource keeps the stored ``.status`` (for kinds with a status subresource);
        ``subresource="status"`` changes only ``.status``.
        """
        obj = copy_json(obj)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            raise invalid(rt, "", "metadata.name: Required value: name is required")
        namespace = self._namespace_of(rt, meta)
        name = meta.get("name") or ""
        _validate_name(rt, name)
        with self._lock:
            old = self._bucket(rt).get((namespace or "", name))
            if old is None:
                raise not_found(rt, name)
            result = self._update(rt, _with_version(rt, old), obj, subresource, dry_run)
        self._deliver()
        return result

    def modify(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        change: Callable[[dict], dict],
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict:
        """Atomically read, transform and write one object (how PATCH is applied).

        ``change`` receives a copy of the stored object and returns the new one; it runs
        under the store lock, so it must not call back into the store.
        """
        with self._lock:
            old = self._bucket(rt).get(self._key(rt, namespace, name))
            if old is None:
                raise not_found(rt, name)
            stored = _with_version(rt, old)
            new = change(copy_json(stored))
            if not isinstance(new, dict):
                raise bad_request("the patched object is not a JSON object")
            meta = new.get("metadata")
            if not isinstance(meta, dict):
                new["metadata"] = meta = {}
            meta["name"] = name
            if namespace is not None:
                meta["namespace"] = namespace
            if meta.get("resourceVersion") is None:
                meta["resourceVersion"] = stored["metadata"]["resourceVersion"]
            result = self._update(rt, stored, new, subresource, dry_run)
        self._deliver()
        return result

    def set_status(
        self, rt: ResourceType, namespace: str | None, name: str, status: dict
    ) -> dict | None:
        """Replace ``.status`` if it differs (no event when equal); None if the object is gone."""
        with self._lock:
            old = self._bucket(rt).get(self._key(rt, namespace, name))
            if old is None:
                return None
            if old.get("status") == status:
                return _with_version(rt, old)
            new = copy_json(old)
            new["status"] = copy_json(status)
            key = self._key(rt, namespace, name)
            self._commit(rt, key, new, old, "MODIFIED")
        self._deliver()
        return _with_version(rt, new)

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        propagation: str = "Background",
        preconditions: dict | None = None,
        dry_run: bool = False,
    ) -> dict:
        """Delete an object and garbage-collect its dependants (``Orphan`` keeps them).

        Deleting a namespace deletes its contents; deleting a CRD deletes its custom
        resources and stops serving them. Deletion is immediate (finalizers are not run).
        """
        if propagation not in ("Background", "Foreground", "Orphan"):
            raise bad_request(f"unknown propagationPolicy {propagation!r}")
        if rt == NAMESPACES and name in PROTECTED_NAMESPACES:
            raise ApiError(
                403,
                "Forbidden",
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                {"name": name, "kind": "namespaces"},
            )
        with self._lock:
            key = self._key(rt, namespace, name)
            old = self._bucket(rt).get(key)
            if old is None:
                raise not_found(rt, name)
            for field, value in (preconditions or {}).items():
                if value and old["metadata"].get(field) != value:
                    raise conflict(
                        rt,
                        name,
                        f"Precondition failed: {field} in precondition: {value}, "
                        f"{field} in object meta: {old['metadata'].get(field)}",
                    )
            if dry_run:
                return _with_version(rt, old)
            gone = self._remove(rt, key, propagation)
        self._deliver()
        return _with_version(rt, gone)

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        propagation: str = "Background",
    ) -> list[dict]:
        labels, fields = _selectors(label_selector, field_selector)
        deleted = []
        with self._lock:
            for key, obj in sorted(self._bucket(rt).items()):
                if namespace is not None and key[0] != namespace:
                    continue
                if key not in self._bucket(rt):  # collected as a dependant meanwhile
                    continue
                if labels.matches(obj["metadata"].get("labels")) and fields.matches(obj):
                    deleted.append(_with_version(rt, self._remove(rt, key, propagation)))
        self._deliver()
        return deleted

    # -- server-side apply bookkeeping ----------------------------------------------------

    def last_applied(self, uid: str, manager: str) -> dict | None:
        with self._lock:
            found = self._applied.get((uid, manager))
            return copy_json(found) if found is not None else None

    def remember_applied(self, uid: str, manager: str, config: dict) -> None:
        with self._lock:
            self._applied[(uid, manager)] = copy_json(config)

    # -- notifications --------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Call ``callback`` for every change, after it, outside the store lock, in order."""
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[Event], None]) -> None:
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        name: str | None = None,
        initial_events: bool | None = None,
    ) -> Watch:
        """Start a watch (``start_rv``: the resourceVersion its live changes follow).

        As in the API server: without a resourceVersion (or "0") the current objects come
        first as ADDED events; with one, the changes after it are replayed, and a version
        older than the kept history is 410 Expired.
        """
        labels, fields = _selectors(label_selector, field_selector)
        w = Watch(self, rt, namespace, name, labels, fields)
        with self._lock:
            replay = resource_version not in (None, "", "0") and initial_events is not True
            if replay:
                try:
                    since = int(resource_version or "")
                except ValueError:
                    raise bad_request(f"invalid resourceVersion {resource_version!r}") from None
                if since < self._compacted_rv:
                    raise ApiError(
                        410,
                        "Expired",
                        f"too old resource version: {since} ({self._compacted_rv + 1})",
                    )
                for change in self._history:
                    if change.rv > since:
                        w._offer(change)
            else:
                for (ns, _), obj in sorted(self._bucket(rt).items()):
                    if namespace is None or ns == namespace:
                        w._offer(_Change(self._rv, "ADDED", rt, obj, None))
                w.initial_count = w._queue.qsize()
            w.start_rv = str(self._rv)
            self._watches.add(w)
            return w

    def close_watches(self) -> None:
        """End every open watch (the server is stopping)."""
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            w.close()

    # -- internals ------------------------------------------------------------------------

    def _bootstrap(self) -> None:
        for name in INITIAL_NAMESPACES:
            self.create(NAMESPACES, {"metadata": {"name": name}})
        # Objects kube-apiserver itself maintains in every cluster.
        self.create(
            SERVICES,
            {
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "clusterIP": str(defaults.SERVICE_CIDR.network_address + 1),
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}],
                },
            },
        )
        for name, value in (
            ("system-node-critical", 2000001000),
            ("system-cluster-critical", 2000000000),
        ):
            self.create(
                PRIORITY_CLASSES,
                {
                    "metadata": {"name": name},
                    "value": value,
                    "description": "Used for system critical pods that must not be moved "
                    "from their current node.",
                },
            )

    def _bucket(self, rt: ResourceType) -> dict[tuple[str, str], dict]:
        return self._objects.setdefault(rt.storage_key, {})

    @staticmethod
    def _key(rt: ResourceType, namespace: str | None, name: str) -> tuple[str, str]:
        return ((namespace or "") if rt.namespaced else "", name)

    @staticmethod
    def _namespace_of(rt: ResourceType, meta: dict) -> str | None:
        if not rt.namespaced:
            meta.pop("namespace", None)
            return None
        namespace = meta.get("namespace")
        if not namespace:
            raise invalid(rt, meta.get("name", ""), "metadata.namespace: Required value")
        return namespace

    def _default(self, rt: ResourceType, obj: dict, old: dict | None) -> None:
        try:
            if rt.group == "" and rt.kind == "Service":
                defaults.service_defaults(
                    obj, old, self._allocator, self._used_ips, self._used_node_ports
                )
            else:
                defaults.apply_defaults(rt, obj, old)
        except defaults.AllocationError as exc:
            raise invalid(rt, obj["metadata"].get("name", ""), str(exc)) from None

    def _used_ips(self) -> set[str]:
        return defaults.used_service_values(self._bucket(SERVICES).values())[0]

    def _used_node_ports(self) -> set[int]:
        return defaults.used_service_values(self._bucket(SERVICES).values())[1]

    def _update(
        self,
        rt: ResourceType,
        stored: dict,
        obj: dict,
        subresource: str | None,
        dry_run: bool,
    ) -> dict:
        """Write ``obj`` over ``stored`` (both as ``rt`` serves them); lock held."""
        meta, old_meta = obj["metadata"], stored["metadata"]
        name = old_meta["name"]
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and wanted_rv != old_meta["resourceVersion"]:
            raise conflict(rt, name)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise conflict(
                rt,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, "
                f"UID in object meta: {old_meta['uid']}",
            )
        if subresource == "status":
            new = copy_json(stored)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
        elif subresource is None:
            new = obj
            new["apiVersion"], new["kind"] = rt.api_version, rt.kind
            for field in _SERVER_METADATA:
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            meta.pop("managedFields", None)
            if "status" in rt.subresources:
                if "status" in stored:
                    new["status"] = stored["status"]
                else:
                    new.pop("status", None)
            self._default(rt, new, stored)
        else:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource ({subresource})"
            )
        new_meta = new["metadata"]
        new_meta["generation"] = old_meta.get("generation", 1) + (
            1 if _body(new) != _body(stored) else 0
        )
        new_meta["resourceVersion"] = old_meta["resourceVersion"]
        if new == stored or dry_run:
            return copy_json(new)
        key = self._key(rt, old_meta.get("namespace"), name)
        old = self._bucket(rt)[key]
        if _is_crd(rt):
            self._register_crd(new, old)
        self._commit(rt, key, new, old, "MODIFIED")
        return _with_version(rt, new)

    def _commit(
        self, rt: ResourceType, key: tuple[str, str], obj: dict, old: dict | None, kind: str
    ) -> None:
        """Store (or, for DELETED, drop) an object at a new resourceVersion; lock held."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        bucket = self._bucket(rt)
        if kind == "DELETED":
            bucket.pop(key, None)
        else:
            bucket[key] = obj
        self._index_owners(rt, key, old, None if kind == "DELETED" else obj)
        change = _Change(self._rv, kind, rt, obj, old)
        if len(self._history) >= self._history_size:
            self._compacted_rv = self._history.popleft().rv
        self._history.append(change)
        for w in self._watches:
            w._offer(change)
        if self._subscribers:
            self._pending.append(Event(kind, rt, obj))

    def _remove(self, rt: ResourceType, key: tuple[str, str], propagation: str) -> dict:
        """Delete one object and what depends on it; lock held. Returns the final object."""
        old = self._bucket(rt)[key]
        gone = copy_json(old)
        self._commit(rt, key, gone, old, "DELETED")
        uid = old["metadata"]["uid"]
        for uid_key in [k for k in self._applied if k[0] == uid]:
            del self._applied[uid_key]
        if rt.group == "" and rt.kind == "Namespace":
            self._remove_namespace_contents(key[1])
        if _is_crd(rt):
            self._unregister_crd(old)
        self._collect_dependants(uid, propagation)
        return gone

    def _remove_namespace_contents(self, namespace: str) -> None:
        for rt in self.registry.storage_types():
            if not rt.namespaced:
                continue
            for key in sorted(k for k in self._bucket(rt) if k[0] == namespace):
                if key in self._bucket(rt):
                    self._remove(rt, key, "Background")

    def _index_owners(
        self, rt: ResourceType, key: tuple[str, str], old: dict | None, new: dict | None
    ) -> None:
        """Keep the owner uid -> dependants index in step with a change; lock held."""
        where = (rt.storage_key, key)
        for uid in _owner_uids(old) - _owner_uids(new):
            dependants = self._dependants.get(uid, {})
            dependants.pop(where, None)
            if not dependants:
                self._dependants.pop(uid, None)
        for uid in _owner_uids(new):
            self._dependants.setdefault(uid, {})[where] = rt

    def _collect_dependants(self, uid: str, propagation: str) -> None:
        """Delete (or, for Orphan, release) what ``uid`` owns; lock held."""
        dependants = sorted(self._dependants.get(uid, {}).items(), key=lambda item: item[0])
        for (_, key), rt in dependants:
            obj = self._bucket(rt).get(key)
            if obj is None:  # collected through another owner meanwhile
                continue
            if propagation != "Orphan":
                self._remove(rt, key, propagation)
                continue
            orphan = copy_json(obj)
            kept = [r for r in orphan["metadata"]["ownerReferences"] if r.get("uid") != uid]
            if kept:
                orphan["metadata"]["ownerReferences"] = kept
            else:
                del orphan["metadata"]["ownerReferences"]
            self._commit(rt, key, orphan, obj, "MODIFIED")

    def _register_crd(self, crd: dict, old: dict | None) -> None:
        new_types = crd_resource_types(crd)
        if not new_types:
            raise invalid(
                CRDS,
                crd["metadata"].get("name", ""),
                "spec: group, names and versions are required",
            )
        expected = f"{new_types[0].plural}.{new_types[0].group}"
        if crd["metadata"].get("name") != expected:
            raise invalid(
                CRDS,
                crd["metadata"].get("name", ""),
                "metadata.name: Invalid value: must be "
                f'spec.names.plural+"."+spec.group ({expected})',
            )
        for rt in crd_resource_types(old) if old else []:
            if rt not in new_types:
                self.registry.remove(rt)
        for rt in new_types:
            self.registry.add(rt)

    def _unregister_crd(self, crd: dict) -> None:
        types = crd_resource_types(crd)
        if types:
            bucket = self._bucket(types[0])
            for key in sorted(bucket):
                if key in bucket:
                    self._remove(types[0], key, "Background")
        for rt in types:
            self.registry.remove(rt)

    def _caught_up(self, w: Watch) -> str | None:
        with self._lock:
            return str(self._rv) if w._queue.empty() else None

    def _unwatch(self, w: Watch) -> None:
        with self._lock:
            self._watches.discard(w)

    def _deliver(self) -> None:
        """Run subscriber callbacks for pending events, in order, outside the store lock.

        One thread delivers at a time; a write made from inside a callback (or by another
        thread meanwhile) is queued and delivered by the thread already delivering.
        """
        while True:
            if not self._delivering.acquire(blocking=False):
                return
            try:
                while True:
                    with self._lock:
                        if not self._pending:
                            break
                        event = self._pending.popleft()
                        callbacks = list(self._subscribers)
                    for callback in callbacks:
                        try:
                            callback(
                                Event(
                                    event.type,
                                    event.resource,
                                    _with_version(event.resource, event.obj),
                                )
                            )
                        except Exception:
                            log.exception("store subscriber failed on %s", event.type)
            finally:
                self._delivering.release()
            with self._lock:
                if not self._pending:
                    return


def _selectors(
    label_selector: str | None, field_selector: str | None
) -> tuple[LabelSelector, FieldSelector]:
    try:
        return parse_label_selector(label_selector), parse_field_selector(field_selector)
    except SelectorError as exc:
        raise bad_request(str(exc)) from None


def _owner_uids(obj: dict | None) -> set[str]:
    if obj is None:
        return set()
    refs = obj["metadata"].get("ownerReferences") or []
    return {ref["uid"] for ref in refs if isinstance(ref, dict) and ref.get("uid")}


def _is_crd(rt: ResourceType) -> bool:
    return rt.group == "apiextensions.k8s.io" and rt.kind == "CustomResourceDefinition"


def _validate_name(rt: ResourceType, name: str) -> None:
    if not name:
        raise invalid(rt, name, "metadata.name: Required value: name or generateName is required")
    if rt.group == "" and rt.kind == "Namespace":
        if len(name) > 63 or not _DNS_LABEL.match(name):
            raise invalid(
                rt,
                name,
                f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 label '
                "must consist of lower case alphanumeric characters or '-'",
            )
    elif name in (".", "..") or "/" in name or "%" in name or len(name) > 253:
        raise invalid(
            rt, name, f'metadata.name: Invalid value: "{name}": not a valid path segment name'
        )
    elif any(c in string.whitespace for c in name):
        raise invalid(rt, name, f'metadata.name: Invalid value: "{name}": must not contain spaces')


def _builtin(api_version: str, kind: str) -> ResourceType:
    rt = builtin_registry().by_kind(api_version, kind)
    assert rt is not None, kind
    return rt


NAMESPACES = _builtin("v1", "Namespace")
SERVICES = _builtin("v1", "Service")
PRIORITY_CLASSES = _builtin("scheduling.k8s.io/v1", "PriorityClass")
CRDS = _builtin("apiextensions.k8s.io/v1", "CustomResourceDefinition")
