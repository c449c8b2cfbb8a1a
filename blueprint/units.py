"""Kubernetes quantities, durations and names: parsing plus the constrained string types."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CPU = re.compile(r"^(\d+(\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+(\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_MEMORY_FACTORS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
# Prometheus/Loki/Go-style durations: one or more <number><unit>, e.g. 30s, 2h, 15d, 1h30m.
_DURATION = re.compile(r"^((\d+)(ms|s|m|h|d|w|y))+$")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION_SECONDS = {
    "ms": Decimal("0.001"),
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "y": 365 * 86400,
}


def cpu_millis(value: str) -> Decimal:
    """``"200m"`` -> 200, ``"2"`` -> 2000, ``"0.5"`` -> 500."""
    m = _CPU.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a CPU quantity (e.g. 100m, 0.5, 2)")
    number = Decimal(m.group(1))
    return number if m.group(3) else number * 1000


def memory_bytes(value: str) -> Decimal:
    """``"256Mi"`` -> 268435456."""
    m = _MEMORY.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a memory quantity (e.g. 64Mi, 2Gi)")
    return Decimal(m.group(1)) * _MEMORY_FACTORS[m.group(3)]


def duration_seconds(value: str) -> Decimal:
    """``"1h30m"`` -> 5400."""
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration (e.g. 30s, 2h, 15d)")
    return sum(
        (Decimal(n) * _DURATION_SECONDS[u] for n, u in _DURATION_PART.findall(value)),
        Decimal(0),
    )


def _check(parser):
    def check(value: str) -> str:
        parser(value)
        return value

    return check


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def _release_name(value: str) -> str:
    _dns_label(value)
    if len(value) > 53:
        raise ValueError(f"{value!r} is {len(value)} characters; helm release names allow 53")
    return value


CpuQuantity = Annotated[str, AfterValidator(_check(cpu_millis))]
MemoryQuantity = Annotated[str, AfterValidator(_check(memory_bytes))]
Duration = Annotated[str, AfterValidator(_check(duration_seconds))]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
ReleaseName = Annotated[str, AfterValidator(_release_name)]
Percent = Annotated[float, Field(ge=0, le=100)]
