"""CustomResourceDefinitions: names accepted and Established after the latency "crd".

The store starts serving a CRD's resources as soon as it is written; this controller only
reports the status that clients (helm, kubectl wait --for condition=established) wait for.
Name conflicts between CRDs are not detected.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sandbox.kube.objects import Key, condition, deep, key_of, merge_conditions, uid
from sandbox.kube.reconciler import Context, Reconciler
from sandbox.kube.store import Event


def accepted_names(spec_names: dict[str, Any]) -> dict[str, Any]:
    kind = spec_names.get("kind", "")
    names = {
        "kind": kind,
        "listKind": spec_names.get("listKind") or f"{kind}List",
        "plural": spec_names.get("plural", ""),
        "singular": spec_names.get("singular") or kind.lower(),
    }
    for optional in ("shortNames", "categories"):
        if spec_names.get(optional):
            names[optional] = list(spec_names[optional])
    return names


class CustomResourceDefinitions(Reconciler):
    name = "crds"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._first_seen: dict[str, float] = {}

    def resume(self) -> Iterable[Key]:
        return self._all_keys(self.kinds.crd)

    def keys_for(self, event: Event) -> Iterable[Key]:
        if event.resource != self.kinds.crd:
            return ()
        if event.type == "DELETED":
            self._first_seen.pop(uid(event.obj), None)
        return [key_of(event.obj)]

    def reconcile(self, key: Key) -> float | None:
        crd = self.store.get(self.kinds.crd, None, key[1])
        if crd is None:
            return None
        seen = self._first_seen.setdefault(uid(crd), time.time())
        left = self.ctx.settings.latency.seconds("crd") - (time.time() - seen)
        status = deep(crd.get("status") or {})
        established = condition(status.get("conditions"), "Established")
        if left > 0 and not (established and established.get("status") == "True"):
            return left
        spec = crd.get("spec") or {}
        status["acceptedNames"] = accepted_names(spec.get("names") or {})
        status["conditions"] = merge_conditions(
            status.get("conditions"),
            [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                },
            ],
        )
        stored = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
        status["storedVersions"] = sorted(set(status.get("storedVersions") or []) | set(stored))
        self.store.set_status(self.kinds.crd, None, key[1], status)
        return None
