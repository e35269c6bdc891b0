"""NodeStates and Candidates made in memory, for the scheduler's pure tests."""

from __future__ import annotations

from controller.nodes import NodeState
from controller.scheduler.allocations import Load, Reservation
from controller.scheduler.filters import Candidate
from controller.store import Entry

GIB = 1 << 30


def state(hostname: str, ready: bool = True, availability: str = "ACTIVE",
          labels: dict[str, str] | None = None, engine: dict[str, str] | None = None,
          cpus: int = 4, memory: int = 8 * GIB, arch: str = "x86_64") -> NodeState:
    node_id = hostname.ljust(25, "0")
    value = {"id": node_id, "availability": availability, "labels": labels or {},
             "description": {"hostname": hostname, "address": "10.0.0.1:7641", "cpus": cpus,
                             "memory_bytes": str(memory), "os": "linux", "architecture": arch,
                             "labels": engine or {}}}
    return NodeState(Entry(f"nodes/{node_id}", value, 1, 1), ready)


def candidate(hostname: str, order: int = 0, reserved: list[Reservation] = (),
              **fields) -> Candidate:
    node = state(hostname, **fields)
    load = Load.read(node.id, None)
    for index, reservation in enumerate(reserved):
        load.add(f"{hostname}-c{index}", reservation)
    return Candidate.of(node, load, order)
