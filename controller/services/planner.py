"""What a service needs next: the leader's decisions for one service, as a pure function.

Given a service, its tasks, the nodes and what the task containers are,
`plan` says which tasks to retire, which slots get a new task, which tasks
to remove (scale down, history) and which containers to stop or remove,
what the update status becomes, and when to look again. The reconciler
carries the plan out; nothing here does I/O, so every rule is unit tested.

Rules (Swarm's replicated orchestrator, restart supervisor and updater):
- slots 1..replicas each keep one task desired running; higher slots are
  removed, tasks and containers;
- a task on a node that is Down (or gone) is orphaned and replaced at once;
  one on a drained node is retired and replaced; a paused node keeps its
  tasks;
- a task that ended is replaced as the restart policy says, after its delay;
  when the policy gives up the task is the slot's last (`final`);
- a slot whose retired task still runs waits for it to stop before its new
  task starts, so a slot never runs two tasks (except with start-first
  updates, by design);
- tasks of an old template are replaced in batches: `parallelism` at a time,
  each new task running for `monitor` before the next batch, `delay` between
  batches; a new task failing within its monitor applies the failure action;
- each slot keeps its last HISTORY tasks; older tasks and their containers go.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field

from controller.services.records import Task, UpdateState
from controller.services.states import Observed, RestartRule, UpdateRule, orphaned

HISTORY = 5   # tasks kept per slot, as Swarm's default task history retention limit
NEVER = float("inf")


@dataclass(frozen=True)
class NodeView:
    """What the planner needs of a node."""

    ready: bool
    availability: str = "active"  # "active" | "pause" | "drain"
    hostname: str = ""


@dataclass(frozen=True)
class ServiceView:
    """What the planner needs of a service."""

    id: str
    replicas: int
    digest: str
    restart: RestartRule = RestartRule()
    update: UpdateRule = UpdateRule()
    rollback: UpdateRule = UpdateRule()
    status: UpdateState = UpdateState()
    has_previous: bool = False

    @property
    def rule(self) -> UpdateRule:
        """The update config in force: rollback_config while rolling back."""
        return self.rollback if self.status.rolling_back else self.update


@dataclass(frozen=True)
class NewTask:
    """A slot that gets a new task; restarts are the counted restart times it inherits."""

    slot: int
    restarts: tuple[float, ...] = ()


@dataclass
class Plan:
    """The decisions of one pass for one service."""

    changed: list[Task] = field(default_factory=list)   # tasks with a new desired state or state
    create: list[NewTask] = field(default_factory=list)
    remove: list[Task] = field(default_factory=list)    # container and record go
    stop: list[Task] = field(default_factory=list)      # container stops (the record stays)
    purge: list[Task] = field(default_factory=list)     # container goes (the record stays)
    status: UpdateState | None = None                   # a new update status to write
    rollback: bool = False                               # go back to the previous spec
    wake: float = NEVER                                  # when to plan again at the latest

    def later(self, when: float) -> None:
        """Plan again at when (at the latest)."""
        self.wake = min(self.wake, when)


class _Slot:
    """One slot's tasks (oldest first) while a plan is made."""

    def __init__(self, number: int, tasks: list[Task]) -> None:
        self.number = number
        if len(tasks) > 1:
            tasks.sort(key=lambda t: (t.created_at, t.id))
        self.tasks = tasks
        self.filled = False  # a new task was planned for it in this pass
        self._live: list[Task] | None = None

    def live(self) -> list[Task]:
        if self._live is None:
            self._live = [t for t in self.tasks if t.desired == "running"]
        return self._live

    def current(self) -> Task | None:
        live = self.live()
        return live[-1] if live else None

    def swap(self, old: Task, new: Task, plan: Plan) -> None:
        self.tasks[self.tasks.index(old)] = new
        self._live = None
        plan.changed.append(new)


def plan(service: ServiceView, tasks: Iterable[Task], nodes: Mapping[str, NodeView],
         observed: Mapping[str, Observed], busy: Container[str], now: float) -> Plan:
    """The next decisions for service (see the module's rules)."""
    out = Plan()
    grouped: dict[int, list[Task]] = defaultdict(list)
    for task in tasks:
        grouped[task.slot].append(task)
    slots = {}
    for number, members in grouped.items():
        if number > service.replicas:
            out.remove.extend(t for t in members if t.id not in busy)
        else:
            slots[number] = _Slot(number, members)
    for slot in slots.values():
        _retire_lost(slot, nodes, now, out)
        _one_live(slot, now, out)
    _update(service, slots, now, out)
    for number in range(1, service.replicas + 1):
        slot = slots.get(number)
        if slot is None:
            out.create.append(NewTask(number))
        else:
            _fill(service, slot, nodes, observed, busy, now, out)
    for slot in slots.values():
        _history(slot, busy, out)
        _cleanup(slot, nodes, observed, busy, out)
    return out


def _retire_lost(slot: _Slot, nodes: Mapping[str, NodeView], now: float, out: Plan) -> None:
    """Orphan live tasks on lost nodes; retire those on drained nodes."""
    for task in slot.live():
        if task.terminal or not task.node_id:
            continue
        node = nodes.get(task.node_id)
        if node is None or not node.ready:
            name = node.hostname if node is not None and node.hostname else task.node_id
            slot.swap(task, orphaned(task, now, f"node {name} is down"), out)
        elif node.availability == "drain":
            slot.swap(task, task.copy(desired="shutdown", message="node is drained"), out)


def _one_live(slot: _Slot, now: float, out: Plan) -> None:
    """Keep one live task: a newer one that runs (or ended) replaces the older ones."""
    live = slot.live()
    if len(live) < 2:
        return
    newest = live[-1]
    if newest.terminal and not newest.final:
        # A start-first replacement that failed: the old task keeps the slot.
        slot.swap(newest, _retired(newest, now), out)
    elif newest.state == "running" or newest.terminal:
        for older in live[:-1]:
            slot.swap(older, _retired(older, now), out)


def _retired(task: Task, now: float) -> Task:
    """The task desired shut down; one that never got a node is over at once."""
    if task.state in ("new", "pending"):
        return task.copy(desired="shutdown", state="shutdown", message="shutdown", status_at=now)
    return task.copy(desired="shutdown")


def _update(service: ServiceView, slots: Mapping[int, _Slot], now: float, out: Plan) -> None:
    """Drive a rolling update: the next batch, its monitoring, the failure action, completion."""
    status, rule = service.status, service.rule
    if status.paused:
        return
    currents = {number: slot.current() for number, slot in slots.items()}
    dirty = sorted(number for number, task in currents.items()
                   if task is not None and task.digest != service.digest)
    if not dirty and not status.active:
        return
    # Tasks no node took yet run nothing: they are replaced at once, outside the batches.
    for number in [n for n in dirty if currents[n].state in ("new", "pending")]:  # type: ignore[union-attr]
        task = currents[number]
        slots[number].swap(task, _retired(task, now), out)  # type: ignore[arg-type]
        currents[number] = None
        dirty.remove(number)
    started = status.started_at
    fresh = [t for slot in slots.values() for t in slot.tasks
             if t.digest == service.digest and t.created_at >= started]
    if status.active and rule.failure_action != "continue":
        failures = [t for t in fresh if t.state in ("failed", "rejected")
                    and (not t.running_since or t.status_at - t.running_since < rule.monitor)]
        if failures and len(failures) > rule.max_failure_ratio * service.replicas:
            _fail(service, failures[0], now, out)
            return
    in_progress, stable_at = 0, started
    for number, task in currents.items():
        if task is None:
            newest = slots[number].tasks[-1]
            if not newest.final and newest.digest != service.digest and newest.node_id:
                in_progress += 1  # retired by the update, its new task not made yet
            continue
        if task.digest != service.digest or task.created_at < started or task.terminal:
            continue
        if task.state == "running" and now >= task.running_since + rule.monitor:
            stable_at = max(stable_at, task.running_since + rule.monitor)
            continue
        in_progress += 1
        if task.state == "running":
            out.later(task.running_since + rule.monitor)
    if in_progress:
        return
    if not dirty:
        if status.active:
            done = "rollback_completed" if status.rolling_back else "completed"
            word = "rollback" if status.rolling_back else "update"
            out.status = UpdateState(done, started, now, f"{word} completed")
        return
    if stable_at > started and now < stable_at + rule.delay:
        out.later(stable_at + rule.delay)
        return
    if not status.active:
        out.status = UpdateState("updating", now, 0.0, "update in progress")
    for number in dirty[:rule.batch(len(dirty))]:
        slot = slots[number]
        task = currents[number]
        if rule.order == "start-first":
            out.create.append(NewTask(number))
            slot.filled = True
        else:
            slot.swap(task, _retired(task, now), out)


def _fail(service: ServiceView, task: Task, now: float, out: Plan) -> None:
    """Apply the failure action for a new task that failed during its monitor period."""
    status = service.status
    word = "rollback" if status.rolling_back else "update"
    why = f"failure or early termination of task {task.id}"
    if task.error:
        why += f": {task.error}"
    if service.rule.failure_action == "rollback" and not status.rolling_back \
            and service.has_previous:
        out.rollback = True
        out.status = UpdateState("rollback_started", now, 0.0, f"update rolled back due to {why}")
        return
    state = "rollback_paused" if status.rolling_back else "paused"
    out.status = UpdateState(state, status.started_at, 0.0, f"{word} paused due to {why}")


def _fill(service: ServiceView, slot: _Slot, nodes: Mapping[str, NodeView],
          observed: Mapping[str, Observed], busy: Container[str], now: float,
          out: Plan) -> None:
    """Give the slot a task desired running if it needs one (restart policy, replacements)."""
    if slot.filled:
        return
    current = slot.current()
    if current is not None:
        if not current.terminal:
            return
        rule = service.restart
        if not rule.restarts(current, now):
            slot.swap(current, current.copy(desired="shutdown", final=True), out)
            return
        due = rule.due(current)
        if now < due:
            out.later(due)
            return
        slot.swap(current, current.copy(desired="shutdown"), out)
        out.create.append(NewTask(slot.number, rule.history(current, now)))
        return
    newest = slot.tasks[-1]
    if newest.final and newest.digest == service.digest:
        return
    if _blocked(slot, nodes, observed, busy):
        return
    out.create.append(NewTask(slot.number))


def _blocked(slot: _Slot, nodes: Mapping[str, NodeView], observed: Mapping[str, Observed],
             busy: Container[str]) -> bool:
    """Whether a retired task of the slot may still be running (its stop not seen yet)."""
    for task in slot.tasks:
        if task.desired == "running" or task.terminal:
            continue
        if task.id in busy:
            return True
        seen = observed.get(task.container_id)
        node = nodes.get(task.node_id)
        if seen is not None and seen.running and node is not None and node.ready:
            return True
    return False


def _history(slot: _Slot, busy: Container[str], out: Plan) -> None:
    """Remove the slot's tasks beyond the last HISTORY."""
    for task in slot.tasks[:-HISTORY]:
        if task.desired != "running" and task.id not in busy:
            out.remove.append(task)


def _cleanup(slot: _Slot, nodes: Mapping[str, NodeView], observed: Mapping[str, Observed],
             busy: Container[str], out: Plan) -> None:
    """Stop the containers of retired tasks; remove those of orphaned ones once their node is back."""
    removed = {t.id for t in out.remove}
    for task in slot.tasks:
        if task.desired == "running" or task.id in busy or task.id in removed:
            continue
        seen = observed.get(task.container_id)
        node = nodes.get(task.node_id)
        if seen is None or node is None or not node.ready:
            continue
        if task.state == "orphaned" or seen.status == "created":
            out.purge.append(task)
        elif seen.running:
            out.stop.append(task)
