"""Dependency graphs: validation, ordering and the earliest-start schedule (critical path).

Pure functions over ``needs`` mappings (node -> the nodes it needs), so they serve the
catalogue, a narrowed set of workflows, and small hand-made graphs in tests alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Needs = Mapping[str, Iterable[str]]
_EPSILON = 1e-9


def graph_problems(needs: Needs) -> list[str]:
    """Unknown needs, self-needs and cycles, one message each, naming the nodes."""
    problems = []
    for node, deps in needs.items():
        for dep in deps:
            if dep == node:
                problems.append(f"component {node!r} needs itself")
            elif dep not in needs:
                problems.append(f"component {node!r} needs unknown component {dep!r}")
    clean = {n: [d for d in deps if d in needs and d != n] for n, deps in needs.items()}
    problems += [f"dependency cycle: {' -> '.join(c)}" for c in find_cycles(clean)]
    return problems


def find_cycles(needs: Mapping[str, list[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of nodes (the shortest through the group's
    first node), as a closed path ``a, b, ..., a``."""
    cycles = []
    for group in strongly_connected(needs):
        first = next(n for n in needs if n in group)
        # Breadth-first from `first` inside the group, back to `first`: the shortest cycle.
        parents: dict[str, str] = {}
        frontier = [first]
        while frontier and first not in parents:
            following = []
            for node in frontier:
                for dep in needs[node]:
                    if dep in group and dep not in parents:
                        parents[dep] = node
                        following.append(dep)
            frontier = following
        path = [first]
        node = parents[first]
        while node != first:
            path.append(node)
            node = parents[node]
        cycles.append([first, *reversed(path[1:]), first])
    return cycles


def strongly_connected(needs: Mapping[str, list[str]]) -> list[set[str]]:
    """Groups of nodes that reach each other (Tarjan), only those that form a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in needs[node]:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1 or node in needs[node]:
                groups.append(group)

    for node in needs:
        if node not in index:
            visit(node)
    return groups


def topological_order(needs: Needs) -> list[str]:
    """Nodes with every need before its dependants; ties keep the mapping's order."""
    needs = {n: list(d) for n, d in needs.items()}
    problems = graph_problems(needs)
    if problems:
        raise ValueError("; ".join(problems))
    order: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        for dep in needs[node]:
            visit(dep)
        done.add(node)
        order.append(node)

    for node in needs:
        visit(node)
    return order


@dataclass(frozen=True)
class Slot:
    """When a node runs in the earliest-start schedule, and how much it may slip."""

    start: float
    finish: float
    slack: float

    @property
    def critical(self) -> bool:
        return self.slack <= _EPSILON


@dataclass(frozen=True)
class Schedule:
    slots: dict[str, Slot]
    critical_path: list[str]

    @property
    def makespan(self) -> float:
        return max((s.finish for s in self.slots.values()), default=0.0)


def schedule(needs: Needs, durations: Mapping[str, float]) -> Schedule:
    """Earliest start/finish of every node when each starts as soon as all its needs have
    finished (unbounded parallelism: the run's lower bound), the slack of each, and one
    critical path from a start node to the node finishing last."""
    needs = {n: list(d) for n, d in needs.items()}
    order = topological_order(needs)
    start: dict[str, float] = {}
    finish: dict[str, float] = {}
    for node in order:
        start[node] = max((finish[d] for d in needs[node]), default=0.0)
        finish[node] = start[node] + durations[node]
    end = max(finish.values(), default=0.0)
    dependants: dict[str, list[str]] = {n: [] for n in order}
    for node in order:
        for dep in needs[node]:
            dependants[dep].append(node)
    latest_finish: dict[str, float] = {}
    for node in reversed(order):
        latest_finish[node] = min(
            (latest_finish[d] - durations[d] for d in dependants[node]), default=end
        )
    slots = {n: Slot(start[n], finish[n], max(0.0, latest_finish[n] - finish[n])) for n in order}
    path: list[str] = []
    if order:
        node = max(order, key=lambda n: (finish[n], -order.index(n)))
        while True:
            path.append(node)
            tight = [d for d in needs[node] if abs(finish[d] - start[node]) <= _EPSILON]
            if not tight:
                break
            node = min(tight, key=order.index)
    return Schedule(slots, list(reversed(path)))
