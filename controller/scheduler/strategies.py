"""Strategies: which of the eligible nodes takes the next container.

- spread: the fewest containers of the request's group (a service's tasks),
  then the fewest containers overall: containers end up evenly spread.
- binpack: the most reserved node that still fits (CPU and memory shares
  added), then the one with the most containers: nodes fill up one by one
  and others stay free for big requests.
- random: any node that fits.

Ties go to the first node by hostname, so placements are predictable. A
picker serves the requests of one kind in a row; within a placement a
node's load only grows, so a node that no longer fits is dropped for good.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Protocol

from controller.scheduler.filters import Candidate

STRATEGIES = ("spread", "binpack", "random")

Fits = Callable[[Candidate], bool]


class Picker(Protocol):
    """Picks nodes, one per request, among the candidates it was made with."""

    def pick(self, fits: Fits) -> Candidate | None:
        """The next node that fits (its load is then updated by the caller), or None."""


class _Ranked:
    """A lazily re-ranked heap: an entry whose key went stale is pushed back with its new key.

    Correct as long as a node's key only grows while the picker is in use,
    which holds for spread (counts grow) and for binpack's picked node
    (which is pushed back after each pick, whatever its new key).
    """

    def __init__(self, nodes: list[Candidate], rank: Callable[[Candidate], tuple]) -> None:
        self.rank = rank
        self.heap = [(rank(node), node.order, node) for node in nodes]
        heapq.heapify(self.heap)
        self.last: Candidate | None = None

    def pick(self, fits: Fits) -> Candidate | None:
        if self.last is not None:
            heapq.heappush(self.heap, (self.rank(self.last), self.last.order, self.last))
            self.last = None
        while self.heap:
            key, order, node = self.heap[0]
            current = self.rank(node)
            if current != key:
                heapq.heapreplace(self.heap, (current, order, node))
                continue
            heapq.heappop(self.heap)
            if fits(node):
                self.last = node
                return node
        return None


def _spread_rank(group: str) -> Callable[[Candidate], tuple]:
    if not group:
        return lambda node: (node.load.count,)
    return lambda node: (node.load.group(group), node.load.count)


def _share(used: int, capacity: int) -> float:
    return used / capacity if capacity else 0.0


def _binpack_rank(node: Candidate) -> tuple:
    reserved = (_share(node.load.nano_cpus, node.nano_cpus)
                + _share(node.load.memory_bytes, node.memory_bytes))
    return (-reserved, -node.load.count)


class _Random:
    def __init__(self, nodes: list[Candidate], rng: random.Random) -> None:
        self.nodes = list(nodes)
        self.rng = rng

    def pick(self, fits: Fits) -> Candidate | None:
        while self.nodes:
            index = self.rng.randrange(len(self.nodes))
            node = self.nodes[index]
            if fits(node):
                return node
            self.nodes[index] = self.nodes[-1]
            self.nodes.pop()
        return None


def picker(strategy: str, nodes: list[Candidate], group: str = "",
           rng: random.Random | None = None) -> Picker:
    """A picker for strategy over nodes (already through the static filters)."""
    if strategy == "spread":
        return _Ranked(nodes, _spread_rank(group))
    if strategy == "binpack":
        return _Ranked(nodes, _binpack_rank)
    if strategy == "random":
        return _Random(nodes, rng or random.Random())
    raise ValueError(f"unknown strategy {strategy!r}")
