"""What placed containers reserve on each node: the `allocations/<node_id>` keys.

    allocations/<node_id> = {"containers": {<container id>: {"nano_cpus": N,
                              "memory_bytes": N, "ports": ["8080/tcp"], "group": "<spread key>"}}}

Every container the scheduler places has an entry (with zero reservations
too), so the entries also count a node's containers for spread. Fields
that are zero or empty are left out, which keeps a busy node's key small.
Every write compares the key's mod revision, so two controllers never
book the same room twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.store import Check, Entry
from kran.api.v1 import nodes_pb2

PREFIX = "allocations/"


def key(node_id: str) -> str:
    """The allocation key of a node."""
    return PREFIX + node_id


@dataclass(frozen=True)
class Reservation:
    """What one container holds on its node."""

    nano_cpus: int = 0
    memory_bytes: int = 0
    ports: tuple[str, ...] = ()
    group: str = ""

    def to_value(self) -> dict[str, Any]:
        """The JSON stored for it, without empty fields."""
        value: dict[str, Any] = {}
        if self.nano_cpus:
            value["nano_cpus"] = self.nano_cpus
        if self.memory_bytes:
            value["memory_bytes"] = self.memory_bytes
        if self.ports:
            value["ports"] = list(self.ports)
        if self.group:
            value["group"] = self.group
        return value


@dataclass(frozen=True)
class Summary:
    """A node's allocation key as read, with its sums; shared, so never changed."""

    node_id: str
    revision: int = 0                   # mod revision read (0: the key does not exist)
    containers: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    nano_cpus: int = 0
    memory_bytes: int = 0
    ports: frozenset[str] = frozenset()
    groups: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def read(cls, node_id: str, entry: Entry | None) -> Summary:
        """The summary of the allocation stored at entry (None: nothing reserved yet)."""
        if entry is None:
            return cls(node_id)
        containers = entry.value.get("containers", {})
        nano_cpus = memory_bytes = 0
        ports: set[str] = set()
        groups: Counter[str] = Counter()
        for value in containers.values():
            if value:
                nano_cpus += int(value.get("nano_cpus", 0))
                memory_bytes += int(value.get("memory_bytes", 0))
                ports.update(value.get("ports", ()))
                if "group" in value:
                    groups[value["group"]] += 1
        return cls(node_id, entry.mod_revision, containers, nano_cpus, memory_bytes,
                   frozenset(ports), groups)


class Load:
    """A node's allocation as read plus what the placement under way adds to it."""

    def __init__(self, summary: Summary) -> None:
        self.summary = summary
        self.added: dict[str, Reservation] = {}
        self.nano_cpus = summary.nano_cpus
        self.memory_bytes = summary.memory_bytes
        self.count = len(summary.containers)
        self.ports: frozenset[str] | set[str] = summary.ports
        self._groups: dict[str, int] = {}

    @classmethod
    def read(cls, node_id: str, entry: Entry | None) -> Load:
        """The load of the allocation stored at entry (None: nothing reserved yet)."""
        return cls(Summary.read(node_id, entry))

    @property
    def node_id(self) -> str:
        return self.summary.node_id

    def group(self, name: str) -> int:
        """How many containers of the spread group name hold a reservation here."""
        return self.summary.groups.get(name, 0) + self._groups.get(name, 0)

    def add(self, container_id: str, reservation: Reservation) -> None:
        """Reserve for container_id (in memory; the scheduler stores `value()`)."""
        self.added[container_id] = reservation
        self.nano_cpus += reservation.nano_cpus
        self.memory_bytes += reservation.memory_bytes
        self.count += 1
        if reservation.ports:
            self.ports = self.ports | set(reservation.ports)
        if reservation.group:
            self._groups[reservation.group] = self._groups.get(reservation.group, 0) + 1

    def check(self) -> Check:
        """The transaction condition: the key is still as it was read."""
        return Check(key(self.node_id), "mod", self.summary.revision)

    def value(self) -> dict[str, Any]:
        """The JSON to store at the node's key."""
        containers = dict(self.summary.containers)
        containers.update((cid, reservation.to_value()) for cid, reservation in self.added.items())
        return {"containers": containers}

    def to_proto(self) -> nodes_pb2.NodeAllocation:
        """The public NodeAllocation message."""
        return nodes_pb2.NodeAllocation(nano_cpus=self.nano_cpus, memory_bytes=self.memory_bytes,
                                        containers=self.count, ports=sorted(self.ports))


def without(entry: Entry, container_ids: Iterable[str]) -> dict[str, Any] | None:
    """entry's value without container_ids' reservations; None if it held none of them."""
    containers = entry.value.get("containers", {})
    doomed = [cid for cid in container_ids if cid in containers]
    if not doomed:
        return None
    return {"containers": {cid: value for cid, value in containers.items() if cid not in doomed}}
