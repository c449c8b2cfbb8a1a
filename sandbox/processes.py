"""Background processes, known by pid *and* start time, so that a pid kept in a state file
is never mistaken for another process that got the same number later (the kernel reuses
pids once a process is gone). Signals go to a process group only while its leader is
still the process that was started.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


class ProcessError(RuntimeError):
    pass


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (stat field 22)."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def alive(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, given ``started``, is still the process that
    started then. Reaps it when it is our own child that has exited."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:
        pass
    fields = _stat(pid)
    if fields is None or fields[0] == "Z":
        return False
    return started is None or int(fields[19]) == started


def group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(int(stat.parent.name))
        if fields and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def stop_group(pgid: int, started: int | None, timeout: float = 20) -> str:
    """SIGTERM the group led by ``pgid``, SIGKILL what is left after ``timeout``; says which
    it took. When ``pgid`` now names another process than the one that started at
    ``started``, nothing is signalled: the number belongs to someone else. (A group whose
    leader has exited keeps its id while members remain, so those are still ours.)"""
    if alive(pgid) and not alive(pgid, started):
        return f"not signalled: pid {pgid} is no longer the process that was started"
    if not group_members(pgid):
        return "not running"
    for sig, wait, outcome in (
        (signal.SIGTERM, timeout, "stopped"),
        (signal.SIGKILL, 5, "killed"),
    ):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return "stopped"
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            alive(pgid)  # reaps the leader when it is our child
            if not group_members(pgid):
                return outcome
            time.sleep(0.05)
    raise ProcessError(f"process group {pgid} still has {group_members(pgid)} after SIGKILL")
