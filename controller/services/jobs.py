"""The container work the leader does for tasks, in the background, a bounded number at once.

Each job works on one task's container (launch = create and start, stop,
purge = remove the container, remove = remove the container so the task
record can go) and reports what happened as an `Outcome` to the
reconciler's queue; the reconciler alone changes its model and writes
records. A task has at most one job at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from controller.creation import Creator
from controller.scheduler import Placed
from controller.services.records import Task
from kran import errors
from kran.api.v1 import containers_pb2, containers_pb2_grpc

log = logging.getLogger(__name__)

CONCURRENCY = 32        # container creations (and, apart, other jobs) in flight at once
STOP_TIMEOUT = 60.0     # seconds a stop may take beyond the container's own grace period


@dataclass(frozen=True)
class Outcome:
    """What a job saw: kind is created | started | rejected | stopped | purged | removed | failed."""

    task_id: str
    kind: str
    container: containers_pb2.Container | None = None
    error: str = ""


class TaskContainers:
    """Create, start, stop and remove task containers, through the Creator."""

    def __init__(self, creator: Creator) -> None:
        self.creator = creator

    async def stop(self, container_id: str, grace: int) -> None:
        """Stop the container (its stop signal, then SIGKILL after grace seconds) and keep its state."""
        record, node = await self.creator.locate(container_id)
        stub = containers_pb2_grpc.ContainersStub(self.creator.agents.channel(node.address))
        request = containers_pb2.StopContainerRequest(container=record.id, timeout=grace,
                                                      timeout_set=grace > 0)
        container = await self.creator.agents.call(
            node, lambda: stub.Stop(request, timeout=grace + STOP_TIMEOUT))
        await self.creator.containers.write_state(record.id, node.id, container.state)

    async def remove(self, container_id: str, node_id: str) -> None:
        """Remove the container (killing it) and its records; one that is gone already is fine.

        A container that never came to be may still hold its reservation on
        node_id (its creator stopped in between): that is released.
        """
        try:
            await self.creator.remove(container_id, force=True)
        except errors.NotFound:
            await self.creator.scheduler.release(node_id, [container_id])


class Jobs:
    """Running jobs by task id; outcomes go to whatever `post` is at the time they end."""

    def __init__(self, containers: TaskContainers, post: Callable[[Outcome], None]) -> None:
        self.containers = containers
        self.post = post
        self.running: dict[str, asyncio.Task[None]] = {}
        self._creating = asyncio.Semaphore(CONCURRENCY)
        self._other = asyncio.Semaphore(CONCURRENCY)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.running

    def _spawn(self, task: Task, body: Callable[[], Coroutine[Any, Any, Outcome]],
               limit: asyncio.Semaphore, failure: str = "failed") -> None:
        """Run body as the task's job; an error it raises is reported as the failure kind."""
        if task.id in self.running:
            return

        async def run() -> None:
            try:
                async with limit:
                    outcome = await body()
            except errors.KranError as exc:
                outcome = Outcome(task.id, failure, error=str(exc))
            except Exception as exc:  # noqa: BLE001 - a job must always report
                log.exception("task job failed", extra={"task": task.id})
                outcome = Outcome(task.id, failure, error=repr(exc))
            finally:
                self.running.pop(task.id, None)
            self.post(outcome)
        self.running[task.id] = asyncio.create_task(run(), name=f"task-job-{task.id}")

    def launch(self, task: Task, placed: Placed, name: str,
               config: containers_pb2.ContainerConfig) -> None:
        """Create the task's container on its placed node and start it."""
        async def body() -> Outcome:
            created = await self.containers.creator.create_on(placed, name, config)
            self.post(Outcome(task.id, "created", created))
            started = await self.containers.creator.start_on(created.id, created.name,
                                                             placed.node)
            return Outcome(task.id, "started", started)
        self._spawn(task, body, self._creating, failure="rejected")

    def stop(self, task: Task, grace: int) -> None:
        """Stop the task's container."""
        async def body() -> Outcome:
            await self.containers.stop(task.container_id, grace)
            return Outcome(task.id, "stopped")
        self._spawn(task, body, self._other)

    def purge(self, task: Task) -> None:
        """Remove the task's container; the task record stays (history)."""
        async def body() -> Outcome:
            await self.containers.remove(task.container_id, task.node_id)
            return Outcome(task.id, "purged")
        self._spawn(task, body, self._other)

    def remove(self, task: Task) -> None:
        """Remove the task's container, so that its record can be deleted."""
        async def body() -> Outcome:
            if task.node_id:
                await self.containers.remove(task.container_id, task.node_id)
            return Outcome(task.id, "removed")
        self._spawn(task, body, self._other)

    async def cancel(self) -> None:
        """Cancel every running job (leadership is lost) and wait for them."""
        running = list(self.running.values())
        for job in running:
            job.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self.running.clear()
