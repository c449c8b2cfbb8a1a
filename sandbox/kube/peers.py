"""Which connections come from inside a cluster's VPC: those of pod processes.

On AWS, code in a pod is inside its cluster's VPC and reaches the cluster's private
endpoint; code elsewhere does not. In the sandbox every client connects from 127.0.0.1,
so the simulator tells them apart by the process at the other end of the connection:
Linux's /proc/net/tcp maps the client's port to its socket's inode, the fd links under
/proc/<pid>/fd find the process holding that socket, and /proc/<pid>/stat its parents. A
connection made by a process the kubelet started for a pod, or by any of its descendants
(helm run by a flow is in the same pod), comes from inside the VPC of the cluster whose node
runs that pod. Everything else is the runner outside.

Only the pod processes' trees are searched, once per connection and only when a request
needs it (an endpoint a runner outside could not reach); the answer is cached on the
connection.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sandbox.kube.runtime import Cluster

LOOPBACK = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
_UNKNOWN = object()


def socket_inode(client_port: int, server_port: int) -> int | None:
    """The inode of the client's end of a loopback TCP connection to ``server_port``."""
    local = f"{LOOPBACK}:{client_port:04X}"
    remote = f"{LOOPBACK}:{server_port:04X}"
    try:
        with open("/proc/net/tcp") as table:
            next(table)  # the header
            for line in table:
                fields = line.split()
                if fields[1] == local and fields[2] == remote:
                    return int(fields[9])
    except OSError:
        return None
    return None


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                found[int(entry.name)] = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return found


def _holds(pid: int, link: str) -> bool:
    try:
        fds = os.scandir(f"/proc/{pid}/fd")
    except OSError:
        return False
    with fds:
        for fd in fds:
            try:
                if os.readlink(fd.path) == link:
                    return True
            except OSError:
                continue
    return False


def pod_root_of(inode: int, roots: set[int]) -> int | None:
    """The pod process whose tree holds the socket ``inode``, None when no pod's does."""
    parents = _parents()
    link = f"socket:[{inode}]"
    for pid in parents:
        root, ancestor = None, pid
        for _ in range(64):  # a parent chain is short; this bounds a racy one
            if ancestor in roots:
                root = ancestor
                break
            ancestor = parents.get(ancestor, 0)
            if ancestor <= 1:
                break
        if root is not None and _holds(pid, link):
            return root
    return None


class ConnectionOrigin:
    """Where one connection to the simulator comes from, found when first asked."""

    def __init__(
        self, roots: Callable[[], dict[int, Cluster]], client_port: int, server_port: int
    ) -> None:
        self._roots = roots
        self._ports = (client_port, server_port)
        self._cluster: object = _UNKNOWN

    def cluster(self) -> Cluster | None:
        """The cluster whose VPC the client is in, None for a client outside any."""
        if self._cluster is _UNKNOWN:
            self._cluster = self._find()
        return self._cluster  # type: ignore[return-value]

    def _find(self) -> Cluster | None:
        roots = self._roots()
        if not roots or not Path("/proc/net/tcp").exists():
            return None
        inode = socket_inode(*self._ports)
        if not inode:
            return None
        root = pod_root_of(inode, set(roots))
        return roots.get(root) if root is not None else None
