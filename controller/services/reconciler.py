"""The leader's reconciler: keeps every service's tasks as its spec says.

A session snapshots services/, tasks/, status/containers/, nodes/ and
presence/, then watches all but tasks/ (the leader is the only writer of
tasks; a service removed by a user takes its tasks along) and loops: apply
the changes, plan each touched service (planner.plan), write the task
records that changed in transactions of at most 128 operations, place every
task waiting for a node in one Scheduler.place call, write those, and only
then start the container work (jobs.Jobs). A watch that ends, a write that
loses its fence or an etcd outage ends the session; the next one rebuilds
everything from etcd, which is also what a newly elected leader does.

Every write carries the leader fence (the leader key's create revision) and,
for task records, a check that their service still exists, so a deposed
leader or a removed service cannot gain tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from controller.containers import STATES, new_id as new_container_id
from controller.creation import request_for
from controller.events import EventLog
from controller.scheduler import Placed, Scheduler
from controller.services.jobs import Jobs, Outcome, TaskContainers
from controller.services.model import NODES, PRESENCE, Model
from controller.services.planner import Plan, ServiceView, plan
from controller.services.records import (SERVICES, TASKS, ServiceRecord, Task, container_name,
                                         new_id, task_config)
from controller.services.states import Observed, RestartRule, UpdateRule, gone, rejected
from controller.services.store import MAX_TXN_OPS, ServiceStore
from controller.store import Change, Check, Store
from kran import errors

log = logging.getLogger(__name__)

PLACE_RETRY = 2.0         # seconds before a task no node could take is placed again
JOB_RETRY = 2.0           # seconds before a failed stop or removal is tried again
RESYNC_PAUSE = 1.0        # seconds between a failed session and the next
MAX_PACE = 0.5            # at most this long between passes to let changes gather
_WRITERS = 4              # task-record transactions in flight at once
_MAX_CHECKS = 120         # services checked in one transaction (etcd allows 128 compares)


class _WatchEnded(Exception):
    """A watch stopped; the session rebuilds from etcd."""


class _Busy:
    """Tasks the planner must leave alone: a job runs, or a failed one waits to be retried."""

    def __init__(self, jobs: Jobs, retry: dict[str, float], now: float) -> None:
        self.jobs, self.retry, self.now = jobs, retry, now

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.jobs or self.retry.get(task_id, 0.0) > self.now  # type: ignore[arg-type]


def view(service: ServiceRecord) -> ServiceView:
    """What the planner needs of a service record."""
    spec = service.spec
    return ServiceView(
        id=service.id, replicas=spec.replicas, digest=service.digest,
        restart=RestartRule.from_proto(spec.restart_policy),
        update=UpdateRule.from_proto(spec.update_config),
        rollback=UpdateRule.from_proto(spec.rollback_config),
        status=service.update_status, has_previous=service.previous_spec is not None)


class Reconciler:
    """Run by the leader (Leadership.run): `run()` until cancelled."""

    def __init__(self, store: Store, services: ServiceStore, scheduler: Scheduler,
                 containers: TaskContainers, fence: Callable[[], Check],
                 events: EventLog | None = None) -> None:
        self.store = store
        self.services = services
        self.scheduler = scheduler
        self.fence = fence
        self.events = events
        self.jobs = Jobs(containers, self._post)
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.model = Model()
        self._writes: dict[str, Task | None] = {}     # task id -> record to write (None: delete)
        self._write_service: dict[str, str] = {}      # task id -> its service id
        self._unplaced: dict[str, float] = {}         # pending task id -> when to place it
        self._retry: dict[str, float] = {}            # task id -> when its failed job may run again
        self._wakes: dict[str, float] = {}            # service id -> when to plan it again
        self._status_written: dict[str, int] = {}     # service id -> version whose status we wrote
        self._dirty: set[str] = set()
        self._doomed: set[str] = set()                # removed services whose tasks remain
        self._release: dict[str, list[str]] = defaultdict(list)  # node -> ended containers
        self._released: set[str] = set()              # tasks whose reservation was let go

    def _post(self, item: Any) -> None:
        self._queue.put_nowait(item)

    async def run(self) -> None:
        """Reconcile until cancelled; a failed session is followed by a fresh one."""
        try:
            while True:
                try:
                    await self._session()
                except (errors.KranError, _WatchEnded) as exc:
                    log.warning("reconciler session ended; rebuilding from etcd",
                                extra={"error": str(exc)})
                except Exception:  # noqa: BLE001 - a bug must not stop every service for good
                    log.exception("reconciler session failed; rebuilding from etcd")
                await asyncio.sleep(RESYNC_PAUSE)
        finally:
            await self.jobs.cancel()

    # -- sessions ----------------------------------------------------------

    async def _session(self) -> None:
        # What the last session's watches saw is read again; what jobs saw still counts.
        outcomes = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, Outcome):
                outcomes.append(item)
        revisions = await self._load()
        for outcome in outcomes:
            self._post(outcome)
        watchers = [asyncio.create_task(self._watch(prefix, revision))
                    for prefix, revision in revisions.items()]
        try:
            while True:
                started = time.monotonic()
                await self._pass()
                elapsed = time.monotonic() - started
                if elapsed > 0.05:
                    await asyncio.sleep(min(elapsed, MAX_PACE))
                timeout = self._next_wake() - time.time()
                try:
                    first = await asyncio.wait_for(self._queue.get(), max(timeout, 0.0))
                except asyncio.TimeoutError:
                    continue
                items = [first]
                while not self._queue.empty():
                    items.append(self._queue.get_nowait())
                now = time.time()
                for item in items:
                    self._apply(item, now)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)

    async def _load(self) -> dict[str, int]:
        """Rebuild the model from snapshots; the revision to watch each prefix from."""
        snapshots = {}
        for prefix in (SERVICES, TASKS, STATES, NODES, PRESENCE):
            snapshots[prefix] = await self.store.snapshot(prefix)
        self.model = Model()
        self.model.load(*(snapshots[p][0] for p in (SERVICES, TASKS, STATES, NODES, PRESENCE)))
        self._writes.clear()
        self._write_service.clear()
        self._release.clear()
        self._released = {t.id for t in self.model.tasks.values() if t.terminal}
        self._unplaced = {}
        self._wakes.clear()
        self._dirty = set(self.model.services)
        now = time.time()
        for task in list(self.model.tasks.values()):
            if task.id in self.jobs:
                continue
            seen = self.model.observed.get(task.container_id)
            if seen is not None:
                moved = self.model.see(task.container_id, seen, now)
                if moved is not None:
                    self._write(moved)
            elif task.state in ("assigned", "starting", "running"):
                # Its container was never made (a leader stopped in between) or is gone;
                # writing it as ended releases its reservation.
                why = "its container was never created" if task.state == "assigned" \
                    else "container is gone"
                moved = gone(task, now, why)
                if moved is not None:
                    self._write(moved)
            elif task.state == "pending" and task.desired == "running":
                self._unplaced[task.id] = now
        self._doomed = set(self.model.by_service) - set(self.model.services)
        log.info("reconciler loaded", extra={"services": len(self.model.services),
                                             "tasks": len(self.model.tasks)})
        return {p: snapshots[p][1] + 1 for p in (SERVICES, STATES, NODES, PRESENCE)}

    async def _watch(self, prefix: str, revision: int) -> None:
        try:
            async with contextlib.aclosing(self.store.watch(prefix, revision)) as changes:
                async for change in changes:
                    self._post(change)
            self._post(_WatchEnded(f"the watch on {prefix} ended"))
        except errors.KranError as exc:
            self._post(_WatchEnded(str(exc)))

    # -- applying what happened ---------------------------------------------

    def _apply(self, item: Any, now: float) -> None:
        if isinstance(item, _WatchEnded):
            raise item
        if isinstance(item, Outcome):
            self._outcome(item, now)
            return
        assert isinstance(item, Change)
        effect = self.model.apply(item, now)
        self._dirty |= effect.dirty
        for task in effect.moved:
            self._write(task)
        if effect.nodes:
            self._unplaced = dict.fromkeys(self._unplaced, now)
        if effect.removed_service:
            self._doomed.add(effect.removed_service)

    def _outcome(self, outcome: Outcome, now: float) -> None:
        task = self.model.tasks.get(outcome.task_id)
        if task is None:
            return
        self._dirty.add(task.service_id)
        if outcome.kind in ("created", "started") and outcome.container is not None:
            state = outcome.container.state
            moved = self.model.see(task.container_id, Observed(
                state.status, state.exit_code, state.error, state.sequence), now)
        elif outcome.kind == "rejected":
            moved = rejected(task, now, outcome.error)
            if moved is not None:
                self.model.put(moved)
        elif outcome.kind == "removed":
            self.model.drop(task.id)
            self._writes[task.key] = None
            self._write_service[task.key] = task.service_id
            return
        else:
            moved = None
            if outcome.kind == "failed":
                log.warning("task job failed; trying again later",
                            extra={"task": task.id, "error": outcome.error})
                self._retry[task.id] = now + JOB_RETRY
        if moved is not None:
            self._write(moved)

    def _write(self, task: Task) -> None:
        self.model.put(task)
        self._writes[task.key] = task
        self._write_service[task.key] = task.service_id
        if task.terminal and task.node_id and task.id not in self._released:
            # An ended task's container never runs again: what it reserved is free (its
            # spread count too), though the container stays for the slot's history.
            self._released.add(task.id)
            self._release[task.node_id].append(task.container_id)

    def _remove_all(self, service_id: str, busy: _Busy) -> None:
        """A removed service: its tasks' containers and records go."""
        for task in list(self.model.by_service.get(service_id, {}).values()):
            self._unplaced.pop(task.id, None)
            if task.id not in busy:
                self.jobs.remove(task)

    # -- a pass ------------------------------------------------------------

    def _next_wake(self) -> float:
        candidates = [time.time() + 60.0, *self._wakes.values(), *self._unplaced.values()]
        candidates += [t for t in self._retry.values()]
        return min(candidates)

    async def _pass(self) -> None:
        now = time.time()
        due = self._dirty | {sid for sid, when in self._wakes.items() if when <= now}
        for task_id in [k for k, when in self._retry.items() if when <= now]:
            del self._retry[task_id]
            if task_id in self.model.tasks:
                due.add(self.model.tasks[task_id].service_id)
        self._dirty = set()
        busy = _Busy(self.jobs, self._retry, now)
        for service_id in list(self._doomed):
            if service_id in self.model.by_service:
                self._remove_all(service_id, busy)
            else:
                self._doomed.discard(service_id)
        statuses = []
        for service_id in due:
            service = self.model.services.get(service_id)
            if service is None:
                self._wakes.pop(service_id, None)
                continue
            decided = plan(view(service), self.model.by_service.get(service_id, {}).values(),
                           self.model.nodes, self.model.observed, busy, now)
            self._carry_out(service, decided, now)
            if decided.status is not None:
                statuses.append((service, decided))
        await self._flush()
        await self._free()
        await self._place(now)
        for service, decided in statuses:
            await self._set_status(service, decided)

    async def _free(self) -> None:
        """Release the reservations of containers whose tasks ended (best effort)."""
        release, self._release = self._release, defaultdict(list)

        async def one(node_id: str, keys: list[str]) -> None:
            try:
                await self.scheduler.release(node_id, keys)
            except errors.KranError as exc:
                log.info("could not release ended tasks' reservations", extra={
                    "node": node_id, "containers": len(keys), "error": str(exc)})
        await asyncio.gather(*(one(node, keys) for node, keys in release.items()))

    def _carry_out(self, service: ServiceRecord, decided: Plan, now: float) -> None:
        for task in decided.changed:
            self._write(task)
            if task.desired != "running":
                self._unplaced.pop(task.id, None)
        for new in decided.create:
            task = Task(id=new_id(), service_id=service.id, slot=new.slot,
                        container_id=new_container_id(), digest=service.digest,
                        spec_version=service.version, image=service.spec.task.image,
                        created_at=now, state="pending", message="pending task scheduling",
                        status_at=now, restarts=new.restarts)
            self._write(task)
            self._unplaced[task.id] = now
        grace = service.spec.task.stop_timeout or 10
        for task in decided.stop:
            self.jobs.stop(task, grace)
        for task in decided.purge:
            self.jobs.purge(task)
        for task in decided.remove:
            self._unplaced.pop(task.id, None)
            self.jobs.remove(task)
        if decided.wake < float("inf"):
            self._wakes[service.id] = decided.wake
        else:
            self._wakes.pop(service.id, None)

    async def _place(self, now: float) -> None:
        """Place every pending task that is due, in one call; write them; then create their containers."""
        tasks = []
        for task_id in [tid for tid, when in self._unplaced.items() if when <= now]:
            task = self.model.tasks.get(task_id)
            if task is None or task.state != "pending" or task.desired != "running" \
                    or task.service_id not in self.model.services or task_id in self.jobs:
                del self._unplaced[task_id]
            else:
                tasks.append(task)
        if not tasks:
            return
        configs = {t.id: task_config(self.model.services[t.service_id], t) for t in tasks}
        requests = [request_for(configs[t.id], self.model.services[t.service_id].spec.placement,
                                t.container_id, spread_key=t.service_id) for t in tasks]
        results = await self.scheduler.place(requests)
        launches = []
        for task, result in zip(tasks, results):
            if isinstance(result, Placed):
                self._unplaced.pop(task.id, None)
                self._write(task.copy(node_id=result.node.id, state="assigned",
                                      message="scheduled", error="", status_at=now))
                launches.append((task.id, result))
            else:
                self._unplaced[task.id] = now + PLACE_RETRY
                error = f"no suitable node ({result})" if isinstance(
                    result, errors.FailedPrecondition) else str(result)
                if task.error != error:
                    self._write(task.copy(error=error))
        try:
            await self._flush()
        except errors.KranError:
            for node_id, keys in _by_node(launches).items():
                with contextlib.suppress(errors.KranError):
                    await self.scheduler.release(node_id, keys)
            raise
        for task_id, placed in launches:
            task = self.model.tasks[task_id]
            service = self.model.services[task.service_id]
            self.jobs.launch(task, placed, container_name(service.name, task.slot, task.id),
                             configs[task_id])

    async def _flush(self) -> None:
        """Write the task records that changed (puts and deletes), fenced, in batches."""
        if not self._writes:
            return
        writes, owners = self._writes, self._write_service
        self._writes, self._write_service = {}, {}
        fence = self.fence()
        batches: list[tuple[list[Check], dict[str, dict], list[str]]] = []
        checks: dict[str, Check] = {}
        puts: dict[str, dict] = {}
        deletes: list[str] = []

        def close() -> None:
            nonlocal checks, puts, deletes
            if puts or deletes:
                batches.append(([fence, *checks.values()], puts, deletes))
            checks, puts, deletes = {}, {}, []

        for key, task in writes.items():
            if len(puts) + len(deletes) >= MAX_TXN_OPS or len(checks) >= _MAX_CHECKS:
                close()
            if task is None:
                deletes.append(key)
                continue
            service = self.model.services.get(owners[key])
            if service is None:
                continue  # its service is gone: the task goes with it
            checks[service.id] = Check(service.entry.key, "create",
                                       service.entry.create_revision)
            puts[key] = task.value()
        close()
        limit = asyncio.Semaphore(_WRITERS)

        async def write(batch: tuple[list[Check], dict[str, dict], list[str]]) -> None:
            async with limit:
                await self.store.transaction(*batch)
        await asyncio.gather(*(write(batch) for batch in batches))

    async def _set_status(self, service: ServiceRecord, decided: Plan) -> None:
        """Write a service's new update status (and swap specs for an automatic rollback)."""
        if self._status_written.get(service.id) == service.version:
            return
        assert decided.status is not None
        written = await self.services.set_status(service, decided.status, decided.rollback,
                                                 self.fence())
        if written:
            self._status_written[service.id] = service.version
            log.info("service update status", extra={"service": service.id,
                                                      "state": decided.status.state,
                                                      "message": decided.status.message})
            if self.events is not None:
                await self.events.emit("service", "update", service.id, {
                    "name": service.name, "updatestate.new": decided.status.state})


def _by_node(launches: list[tuple[str, Placed]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for _, placed in launches:
        out[placed.node.id].append(placed.request.key)
    return out
