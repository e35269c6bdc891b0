"""Task states from container states, and the policies that act on them (pure).

A task's state only moves forward (records.STATE_ORDER). Its container's
observed state decides it: created -> starting, running -> running,
exited 0 -> complete, exited N -> failed ("task: non-zero exit (N)"), dead
or gone -> failed. A task the leader retired (desired "shutdown") whose
container stops is "shutdown" instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.services.records import STATE_ORDER, Task
from kran.api.v1 import services_pb2

NS = 1_000_000_000
RUNNING_STATUSES = frozenset({"running", "restarting", "paused"})


@dataclass(frozen=True)
class Observed:
    """What the container of a task is, as its agent last reported."""

    status: str
    exit_code: int = 0
    error: str = ""
    sequence: int = 0

    @property
    def running(self) -> bool:
        return self.status in RUNNING_STATUSES


def _moved(task: Task, state: str, now: float, message: str = "", error: str = "",
           exit_code: int = 0) -> Task | None:
    if STATE_ORDER[state] <= STATE_ORDER[task.state]:
        return None
    changes = {"state": state, "message": message, "error": error, "exit_code": exit_code,
               "status_at": now}
    if state == "running":
        changes["running_since"] = now
    return task.copy(**changes)


def observe(task: Task, container: Observed, now: float) -> Task | None:
    """The task after its container was seen in this state; None if the task does not change."""
    if task.terminal:
        return None
    retired = task.desired != "running"
    if container.status == "created":
        return _moved(task, "starting", now, "starting")
    if container.running:
        return _moved(task, "running", now, "started")
    if container.status == "exited":
        if retired:
            return _moved(task, "shutdown", now, "shutdown", exit_code=container.exit_code)
        if container.exit_code == 0:
            return _moved(task, "complete", now, "finished")
        return _moved(task, "failed", now, "started",
                      f"task: non-zero exit ({container.exit_code})", container.exit_code)
    if container.status == "dead":
        if retired:
            return _moved(task, "shutdown", now, "shutdown")
        return _moved(task, "failed", now, "", f"task: {container.error or 'container is dead'}")
    return None


def gone(task: Task, now: float, why: str = "container is gone") -> Task | None:
    """The task after its container disappeared (or was never made); None if it is over already."""
    if task.terminal:
        return None
    if task.desired != "running":
        return _moved(task, "shutdown", now, "shutdown")
    return _moved(task, "failed", now, "", f"task: {why}")


def rejected(task: Task, now: float, error: str) -> Task | None:
    """The task after its container could not be created or started."""
    return _moved(task, "rejected", now, "", f"task: {error}")


def orphaned(task: Task, now: float, why: str) -> Task:
    """A task whose node is lost: retired at once, its slot refilled elsewhere."""
    moved = _moved(task, "orphaned", now, why) or task
    return moved.copy(desired="shutdown")


@dataclass(frozen=True)
class RestartRule:
    """When a slot whose task ended gets a new one (Swarm's restart policy)."""

    condition: str = "any"
    delay: float = 5.0
    max_attempts: int = 0
    window: float = 0.0

    @classmethod
    def from_proto(cls, policy: services_pb2.TaskRestartPolicy) -> RestartRule:
        return cls(policy.condition or "any", policy.delay_ns / NS, policy.max_attempts,
                   policy.window_ns / NS)

    def counted(self, restarts: tuple[float, ...], now: float) -> tuple[float, ...]:
        """The restarts that count against max_attempts: those within the window."""
        if self.window <= 0:
            return restarts
        return tuple(t for t in restarts if t > now - self.window)

    def restarts(self, task: Task, now: float) -> bool:
        """Whether the slot of this ended task gets another task."""
        if self.condition == "none":
            return False
        if self.condition == "on-failure" and task.state == "complete":
            return False
        if self.max_attempts and len(self.counted(task.restarts, now)) >= self.max_attempts:
            return False
        return True

    def history(self, task: Task, now: float) -> tuple[float, ...]:
        """The restart times the slot's next task carries: this restart and the counted ones before."""
        if not self.max_attempts:
            return ()
        return (self.counted(task.restarts, now) + (now,))[-self.max_attempts:]

    def due(self, task: Task) -> float:
        """When the new task may start: the delay after the old one ended."""
        return task.status_at + self.delay


@dataclass(frozen=True)
class UpdateRule:
    """How a rolling update (or rollback) replaces tasks (Swarm's update config)."""

    parallelism: int = 1
    delay: float = 0.0
    failure_action: str = "pause"
    monitor: float = 5.0
    max_failure_ratio: float = 0.0
    order: str = "stop-first"

    @classmethod
    def from_proto(cls, config: services_pb2.UpdateConfig) -> UpdateRule:
        return cls(config.parallelism, config.delay_ns / NS, config.failure_action or "pause",
                   config.monitor_ns / NS, config.max_failure_ratio,
                   config.order or "stop-first")

    def batch(self, waiting: int) -> int:
        """How many tasks the next batch replaces."""
        return waiting if self.parallelism == 0 else min(self.parallelism, waiting)
