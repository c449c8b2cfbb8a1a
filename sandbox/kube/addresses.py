"""Unique private IP addresses for nodes and pods, picked by hashing a key.

Hashing makes a given object get the same value in every run, which keeps test output and
logs stable; linear probing resolves clashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class HashedAllocator(Generic[T]):
    def __init__(self, size: int, render: Callable[[int], T]) -> None:
        self._size = size
        self._render = render
        self._used: set[T] = set()

    def take(self, value: T) -> None:
        """Mark a value that is already in use (found on an existing object)."""
        self._used.add(value)

    def release(self, value: T) -> None:
        self._used.discard(value)

    def pick(self, key: str) -> T:
        start = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
        for step in range(self._size):
            value = self._render((start + step) % self._size)
            if value not in self._used:
                self._used.add(value)
                return value
        raise RuntimeError(f"no free value left among {self._size}")


class SubnetAddresses:
    """Private IPv4 addresses of a VPC 10.0.0.0/16 split into one /19 per zone.

    Nodes and pods share them, as with the VPC CNI, where pods get VPC addresses.
    """

    BLOCK = 32  # third octets per zone: a /19
    # .4-.254 in every /24: clear of network, broadcast and AWS-reserved (.1-.3) addresses
    FIRST_HOST, LAST_HOST = 4, 254

    def __init__(self, prefix: str = "10.0") -> None:
        self._hosts = self.LAST_HOST - self.FIRST_HOST + 1
        self._zones: dict[int, HashedAllocator[str]] = {}
        self._prefix = prefix

    def _zone(self, zone: int) -> HashedAllocator[str]:
        if zone not in self._zones:
            base = zone * self.BLOCK

            def render(i: int, base: int = base) -> str:
                third, host = divmod(i, self._hosts)
                return f"{self._prefix}.{base + third}.{self.FIRST_HOST + host}"

            self._zones[zone] = HashedAllocator(self.BLOCK * self._hosts, render)
        return self._zones[zone]

    def zone_of(self, address: str) -> int:
        return int(address.split(".")[2]) // self.BLOCK

    def take(self, address: str) -> None:
        if address.startswith(self._prefix + "."):
            self._zone(self.zone_of(address)).take(address)

    def release(self, address: str) -> None:
        if address.startswith(self._prefix + "."):
            self._zone(self.zone_of(address)).release(address)

    def pick(self, key: str, zone: int) -> str:
        return self._zone(zone).pick(key)
