"""Latency profile and fault injection: both off by default, shared by every sandbox server.

The latency profile turns the guide's minutes into wall-clock seconds with one time scale
(e.g. 0.2 s per guide minute): while a thing's time has not passed, the simulated control
planes report it as still in progress. Faults are named misbehaviours with a target
(an fnmatch pattern) and an optional count of times they fire.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Guide minutes of the things the sandbox simulates (foundation phases, small charts).
DEFAULT_MINUTES: dict[str, float] = {
    "eks_cluster": 12,  # guide: eks 12-15
    "nodegroup": 5,  # guide: node groups 5-8
    "node_join": 20,  # EKS fails a node group whose nodes are not Ready by then
    "cluster_update": 3,  # UpdateClusterConfig: endpoint access or logging
    "nodegroup_update": 1,  # UpdateNodegroupConfig: scaling, labels, taints
    "addon": 2,  # an add-on rolling out on Ready nodes
    "pod_ready": 0.5,  # a pod from scheduled to Ready
    "load_balancer": 2,  # a LoadBalancer Service getting its hostname
    "load_balancer_enis": 3,  # a deleted load balancer's network interfaces going
    "job": 0.5,  # a Job completing
    "crd": 0,  # a CRD becoming Established
    "eks_token": 15,  # how long EKS accepts a token after it was signed
}

FAULTS: dict[str, str] = {
    "aws-throttle": "target 'service:Operation' (e.g. eks:CreateCluster): ThrottlingException",
    "aws-error": "target 'service:Operation': HTTP 503 ServiceUnavailable",
    "aws-denied": "target 'service:Operation': HTTP 403 access denied (a permanent error)",
    "eks-create-fails": "target cluster name: the cluster goes FAILED instead of ACTIVE",
    "addon-degraded": "target add-on name (e.g. coredns): the add-on reports DEGRADED",
    "pods-never-ready": "target 'namespace/release': that release's pods never become Ready",
    "lb-never-provisioned": "target 'namespace/service': no load balancer hostname, ever",
    "kube-unavailable": "target 'METHOD /path' (e.g. 'POST /api/v1/namespaces/*'): the "
    "Kubernetes API answers 503, as an overloaded or restarting API server does",
    "kube-forbidden": "target 'METHOD /path': the Kubernetes API answers 403 Forbidden",
    "s3-name-taken": "target bucket name: another AWS account owns that name (S3 names are "
    "global): HeadBucket 403, CreateBucket 409 BucketAlreadyExists",
}


class SettingsError(ValueError):
    pass


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingsError(f"{name}: {value!r} is not a number")
    return float(value)


@dataclass
class Fault:
    name: str
    target: str = "*"
    count: int | None = None  # None: fires until cleared

    def __post_init__(self) -> None:
        if self.name not in FAULTS:
            raise SettingsError(f"unknown fault {self.name!r}; known: {', '.join(FAULTS)}")
        if self.count is not None and self.count < 1:
            raise SettingsError(f"fault {self.name}: count must be >= 1")

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``name[:target[:count]]``, e.g. ``aws-throttle:eks:CreateCluster:3``."""
        name, _, rest = text.partition(":")
        count = None
        head, _, tail = rest.rpartition(":")
        if tail.isdigit() and head:
            rest, count = head, int(tail)
        return cls(name, rest or "*", count)


class FaultBook:
    """The faults in force. Thread-safe: servers consult it from their request threads."""

    def __init__(self, faults: list[Fault] | None = None):
        self._lock = threading.Lock()
        self._faults: list[Fault] = list(faults or [])
        self.fired: dict[str, int] = {}

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self, name: str | None = None) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if name and f.name != name]

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _match(self, name: str, subjects: tuple[str, ...]) -> Fault | None:
        for fault in self._faults:
            if fault.name == name and any(fnmatch.fnmatchcase(s, fault.target) for s in subjects):
                return fault
        return None

    def active(self, name: str, *subjects: str) -> bool:
        """Whether a standing fault applies (does not use up a count)."""
        with self._lock:
            return self._match(name, subjects) is not None

    def fire(self, name: str, *subjects: str) -> bool:
        """Whether the fault applies now; a counted fault is used up by firing."""
        with self._lock:
            fault = self._match(name, subjects)
            if fault is None:
                return False
            self.fired[name] = self.fired.get(name, 0) + 1
            if fault.count is not None:
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
            return True


@dataclass
class Latency:
    time_scale: float = 0.0  # wall seconds per guide minute; 0: everything is instant
    minutes: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MINUTES))
    # An EKS token lives ``eks_token`` minutes at the scale, but never less than this: what
    # a client pays to renew one (a process start, a signature) does not shrink with time.
    min_token_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.time_scale < 0:
            raise SettingsError("time_scale must be >= 0")
        unknown = set(self.minutes) - set(DEFAULT_MINUTES)
        if unknown:
            raise SettingsError(
                f"unknown latency keys {sorted(unknown)}; known: {list(DEFAULT_MINUTES)}"
            )

    def seconds(self, what: str) -> float:
        return self.time_scale * self.minutes.get(what, DEFAULT_MINUTES[what])

    def done(self, what: str, since: float, now: float | None = None) -> bool:
        """Whether a ``what`` that began at ``since`` (time.time()) has finished."""
        return (now if now is not None else time.time()) - since >= self.seconds(what)


@dataclass
class SandboxSettings:
    latency: Latency = field(default_factory=Latency)
    faults: FaultBook = field(default_factory=FaultBook)
    # Service Quotas values by SERVICE/CODE over the sandbox's own (sandbox/aws/quotas.py)
    quotas: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxSettings:
        unknown = set(data) - {"time_scale", "latency_minutes", "faults", "quotas"}
        if unknown:
            raise SettingsError(f"unknown sandbox settings {sorted(unknown)}")
        minutes = data.get("latency_minutes") or {}
        if not isinstance(minutes, dict):
            raise SettingsError("latency_minutes: expected a mapping of name to minutes")
        latency = Latency(
            _number("time_scale", data.get("time_scale", 0.0)),
            {
                **DEFAULT_MINUTES,
                **{k: _number(f"latency_minutes.{k}", v) for k, v in minutes.items()},
            },
        )
        faults = []
        for item in data.get("faults") or []:
            if isinstance(item, str):
                faults.append(Fault.parse(item))
            elif isinstance(item, dict):
                try:
                    faults.append(Fault(**item))
                except TypeError as exc:
                    raise SettingsError(f"faults: {item!r}: {exc}") from None
            else:
                raise SettingsError(
                    f"faults: {item!r} is neither NAME[:TARGET[:COUNT]] nor a mapping"
                )
        quotas = data.get("quotas") or {}
        if not isinstance(quotas, dict) or not all(
            isinstance(k, str) and k.count("/") == 1 for k in quotas
        ):
            raise SettingsError("quotas: expected a mapping of SERVICE/CODE to a value")
        values = {k: _number(f"quotas.{k}", v) for k, v in quotas.items()}
        return cls(latency, FaultBook(faults), values)

    @classmethod
    def from_file(cls, path: Path) -> SandboxSettings:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise SettingsError(f"{path}: cannot read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
            raise SettingsError(
                f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})"
            ) from None
        if not isinstance(data, dict):
            raise SettingsError(f"{path}: expected a mapping")
        try:
            return cls.from_dict(data)
        except SettingsError as exc:
            raise SettingsError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "time_scale": self.latency.time_scale,
            "latency_minutes": dict(self.latency.minutes),
            "faults": [asdict(f) for f in self.faults.list()],
            "quotas": dict(self.quotas),
        }
