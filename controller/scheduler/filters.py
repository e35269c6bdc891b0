"""The scheduler's filters: which nodes may take a request.

Each filter has `check(node)` and says why it refused in two ways:
`explain(total, matched)` for the whole cluster ("no node has image
busybox:latest: 3 nodes, 0 match") and `refusal(node)` for a pinned node
("node h1 (...) is down"). Static filters depend only on the node and the
request; dynamic ones on what is reserved, which grows while a batch is
placed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from controller.nodes import NodeState
from controller.scheduler.allocations import Load
from controller.scheduler.constraints import Constraint
from kran.units import bytes_size

NANO = 1_000_000_000


def cpus(nano_cpus: int) -> str:
    """Nano CPUs as the user wrote them: 4, 0.5."""
    value = Fraction(nano_cpus, NANO)
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@dataclass(eq=False)
class Candidate:
    """A node as this placement sees it: its record, its capacity and its load."""

    state: NodeState
    load: Load
    nano_cpus: int          # capacity; 0 when the agent did not say
    memory_bytes: int
    order: int              # position by hostname, the tie-break of every strategy

    @classmethod
    def of(cls, state: NodeState, load: Load, order: int) -> Candidate:
        """The candidate for a node, its capacity read from the agent's description."""
        description = state.record.value.get("description", {})
        return cls(state, load, int(description.get("cpus", 0) or 0) * NANO,
                   int(description.get("memory_bytes", 0) or 0), order)

    @property
    def id(self) -> str:
        return self.state.id

    @property
    def name(self) -> str:
        return f"{self.state.hostname} ({self.state.id})"


class Filter(Protocol):
    """One condition a node must meet."""

    def check(self, node: Candidate) -> bool:
        """Whether node passes."""

    def explain(self, total: int, matched: int) -> str:
        """Why no node of total passed, for the whole cluster."""

    def refusal(self, node: Candidate) -> str:
        """Why this one node did not pass (after "node h1 (id) ")."""


def _counts(total: int, matched: int) -> str:
    return f"{_plural(total, 'node')}, {matched} match"


class Ready:
    """The node's presence lease is alive."""

    def check(self, node: Candidate) -> bool:
        return node.state.ready

    def explain(self, total: int, matched: int) -> str:
        return f"no node is ready: {_counts(total, matched)}"

    def refusal(self, node: Candidate) -> str:
        return "is down"


class Active:
    """Paused and drained nodes take no new containers."""

    def check(self, node: Candidate) -> bool:
        return availability(node.state) == "ACTIVE"

    def explain(self, total: int, matched: int) -> str:
        return f"no node is active (the others are paused or drained): {_counts(total, matched)}"

    def refusal(self, node: Candidate) -> str:
        return "is paused" if availability(node.state) == "PAUSE" else "is drained"


def availability(node: NodeState) -> str:
    """ACTIVE, PAUSE or DRAIN."""
    return node.record.value.get("availability", "ACTIVE")


@dataclass(frozen=True)
class Pinned:
    """--node: only the named node."""

    node_id: str
    ref: str

    def check(self, node: Candidate) -> bool:
        return node.id == self.node_id

    def explain(self, total: int, matched: int) -> str:
        return f"no node is {self.ref}: {_counts(total, matched)}"

    def refusal(self, node: Candidate) -> str:
        return f"is not {self.ref}"


@dataclass(frozen=True)
class Satisfies:
    """One placement constraint."""

    constraint: Constraint

    def check(self, node: Candidate) -> bool:
        return self.constraint.matches(node.state)

    def explain(self, total: int, matched: int) -> str:
        return f"no node satisfies {self.constraint.text}: {_counts(total, matched)}"

    def refusal(self, node: Candidate) -> str:
        return f"does not satisfy {self.constraint.text}"


@dataclass(frozen=True)
class CpuLimit:
    """A container limited to N CPUs needs a node with at least N."""

    nano_cpus: int

    def check(self, node: Candidate) -> bool:
        return not node.nano_cpus or node.nano_cpus >= self.nano_cpus

    def explain(self, total: int, matched: int) -> str:
        return f"no node has {cpus(self.nano_cpus)} CPUs for the limit: {_counts(total, matched)}"

    def refusal(self, node: Candidate) -> str:
        return f"has {cpus(node.nano_cpus)} CPUs, fewer than the limit of {cpus(self.nano_cpus)}"


@dataclass(frozen=True)
class MemoryLimit:
    """A container limited to N bytes needs a node with at least N."""

    memory_bytes: int

    def check(self, node: Candidate) -> bool:
        return not node.memory_bytes or node.memory_bytes >= self.memory_bytes

    def explain(self, total: int, matched: int) -> str:
        return (f"no node has {bytes_size(self.memory_bytes)} of memory for the limit: "
                f"{_counts(total, matched)}")

    def refusal(self, node: Candidate) -> str:
        return (f"has {bytes_size(node.memory_bytes)} of memory, less than the limit of "
                f"{bytes_size(self.memory_bytes)}")


@dataclass(frozen=True)
class HasImage:
    """The node's store holds the image (asked of its agent once per placement)."""

    image: str                      # as shown: busybox:latest
    holders: Collection[str]        # node ids that have it
    failures: tuple[str, ...] = ()  # "h3: <why its agent could not say>"

    def check(self, node: Candidate) -> bool:
        return node.id in self.holders

    def explain(self, total: int, matched: int) -> str:
        text = f"no node has image {self.image}: {_counts(total, matched)}"
        if self.failures:
            text += "; " + "; ".join(self.failures)
        return text

    def refusal(self, node: Candidate) -> str:
        for failure in self.failures:
            if failure.startswith(node.state.hostname + ": "):
                return f"could not say whether it has image {self.image}: " + \
                    failure.partition(": ")[2]
        return f"does not have image {self.image}"


@dataclass(frozen=True)
class CpuReservation:
    """--reserve-cpus: the node's CPUs not yet reserved."""

    nano_cpus: int

    def check(self, node: Candidate) -> bool:
        return not node.nano_cpus or node.load.nano_cpus + self.nano_cpus <= node.nano_cpus

    def explain(self, total: int, matched: int) -> str:
        return (f"no node has {cpus(self.nano_cpus)} CPUs free to reserve: "
                f"{_counts(total, matched)}")

    def refusal(self, node: Candidate) -> str:
        return (f"does not have {cpus(self.nano_cpus)} CPUs free to reserve "
                f"({cpus(node.load.nano_cpus)} of {cpus(node.nano_cpus)} reserved)")


@dataclass(frozen=True)
class MemoryReservation:
    """--reserve-memory: the node's memory not yet reserved."""

    memory_bytes: int

    def check(self, node: Candidate) -> bool:
        return (not node.memory_bytes
                or node.load.memory_bytes + self.memory_bytes <= node.memory_bytes)

    def explain(self, total: int, matched: int) -> str:
        return (f"no node has {bytes_size(self.memory_bytes)} of memory free to reserve: "
                f"{_counts(total, matched)}")

    def refusal(self, node: Candidate) -> str:
        return (f"does not have {bytes_size(self.memory_bytes)} of memory free to reserve "
                f"({bytes_size(node.load.memory_bytes)} of {bytes_size(node.memory_bytes)} "
                "reserved)")


@dataclass(frozen=True)
class PortsFree:
    """Published host ports ("8080/tcp") that no container on the node publishes yet."""

    ports: tuple[str, ...]

    def check(self, node: Candidate) -> bool:
        return node.load.ports.isdisjoint(self.ports)

    def explain(self, total: int, matched: int) -> str:
        return (f"no node has host port {', '.join(self.ports)} free: "
                f"{_counts(total, matched)}")

    def refusal(self, node: Candidate) -> str:
        taken = sorted(node.load.ports.intersection(self.ports))
        return f"already publishes host port {', '.join(taken)}"


def explain(filters: list[Filter], nodes: list[Candidate], pinned: bool) -> str:
    """Why no node passes every filter: the first filter that left none."""
    remaining = nodes
    for current in filters:
        passed = [node for node in remaining if current.check(node)]
        if not passed:
            if pinned and len(remaining) == 1:
                return f"node {remaining[0].name} {current.refusal(remaining[0])}"
            return current.explain(len(remaining), 0)
        remaining = passed
    return f"no node can take it: {_counts(len(nodes), len(remaining))}"
