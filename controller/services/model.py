"""The leader's picture of services, tasks, task containers and nodes, kept from etcd.

Loaded from snapshots and kept current by watches. Task records are the
leader's own: they change here as soon as the leader decides (and are
written in batches), and a new leader loads them from etcd. Container
states only ever come from etcd (the agents' reports).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from controller.containers import STATES, decode_state
from controller.services.planner import NodeView
from controller.services.records import SERVICES, ServiceRecord, Task
from controller.services.states import Observed, gone, observe
from controller.store import Change, Entry

NODES = "nodes/"
PRESENCE = "presence/"


def observed_of(entry: Entry) -> Observed:
    """The Observed state of a status/containers/ entry."""
    state = decode_state(entry)
    return Observed(state.status, state.exit_code, state.error, state.sequence)


@dataclass
class Effect:
    """What a change touched: services to plan again, tasks that moved, whether nodes changed."""

    dirty: set[str] = field(default_factory=set)
    moved: list[Task] = field(default_factory=list)
    nodes: bool = False
    removed_service: str = ""


class Model:
    """Services, tasks, observed task containers and nodes."""

    def __init__(self) -> None:
        self.services: dict[str, ServiceRecord] = {}
        self.tasks: dict[str, Task] = {}
        self.by_service: dict[str, dict[str, Task]] = defaultdict(dict)
        self.by_container: dict[str, str] = {}
        self.observed: dict[str, Observed] = {}
        self.node_records: dict[str, Entry] = {}
        self.present: set[str] = set()
        self.nodes: dict[str, NodeView] = {}

    # -- loading -----------------------------------------------------------

    def load(self, services: Iterable[Entry], tasks: Iterable[Entry], states: Iterable[Entry],
             nodes: Iterable[Entry], presence: Iterable[Entry]) -> None:
        """Fill the model from snapshots."""
        for entry in services:
            record = ServiceRecord.from_entry(entry)
            self.services[record.id] = record
        for entry in tasks:
            self.put(Task.from_value(entry.value))
        for entry in states:
            container_id = entry.key[len(STATES):]
            if container_id in self.by_container:
                self.observed[container_id] = observed_of(entry)
        for entry in nodes:
            self.node_records[entry.key[len(NODES):]] = entry
        self.present = {entry.key[len(PRESENCE):] for entry in presence}
        self._views()

    def _views(self) -> None:
        self.nodes = {}
        for node_id, entry in self.node_records.items():
            value = entry.value
            self.nodes[node_id] = NodeView(
                ready=node_id in self.present,
                availability=str(value.get("availability", "ACTIVE")).lower(),
                hostname=value.get("description", {}).get("hostname", ""))

    # -- tasks -------------------------------------------------------------

    def put(self, task: Task) -> None:
        """Add or replace a task."""
        self.tasks[task.id] = task
        self.by_service[task.service_id][task.id] = task
        self.by_container[task.container_id] = task.id

    def drop(self, task_id: str) -> None:
        """Forget a task."""
        task = self.tasks.pop(task_id, None)
        if task is None:
            return
        members = self.by_service.get(task.service_id)
        if members is not None:
            members.pop(task_id, None)
            if not members:
                del self.by_service[task.service_id]
        self.by_container.pop(task.container_id, None)
        self.observed.pop(task.container_id, None)

    def see(self, container_id: str, seen: Observed | None, now: float) -> Task | None:
        """Record a task container's state (None: it is gone); the task if it moved."""
        task_id = self.by_container.get(container_id)
        if task_id is None:
            return None
        task = self.tasks[task_id]
        if seen is None:
            self.observed.pop(container_id, None)
            moved = gone(task, now)
        else:
            known = self.observed.get(container_id)
            if known is not None and known.sequence > seen.sequence:
                return None
            self.observed[container_id] = seen
            moved = observe(task, seen, now)
        if moved is not None:
            self.put(moved)
        return moved

    # -- changes -----------------------------------------------------------

    def apply(self, change: Change, now: float) -> Effect:
        """Apply one watched change."""
        effect = Effect()
        key = change.key
        if key.startswith(SERVICES):
            service_id = key[len(SERVICES):]
            if change.entry is not None:
                self.services[service_id] = ServiceRecord.from_entry(change.entry)
                effect.dirty.add(service_id)
            elif self.services.pop(service_id, None) is not None:
                effect.removed_service = service_id
        elif key.startswith(STATES):
            container_id = key[len(STATES):]
            task_id = self.by_container.get(container_id)
            if task_id is None:
                return effect
            moved = self.see(container_id, observed_of(change.entry)
                             if change.entry is not None else None, now)
            if moved is not None:
                effect.moved.append(moved)
            effect.dirty.add(self.tasks[task_id].service_id)
        elif key.startswith(NODES):
            node_id = key[len(NODES):]
            if change.entry is not None:
                self.node_records[node_id] = change.entry
            else:
                self.node_records.pop(node_id, None)
            self._views()
            effect.nodes = True
        elif key.startswith(PRESENCE):
            node_id = key[len(PRESENCE):]
            if change.entry is not None:
                self.present.add(node_id)
            else:
                self.present.discard(node_id)
            self._views()
            effect.nodes = True
        if effect.nodes:
            effect.dirty.update(self.services)
        return effect
