"""A task's status, the moves allowed between them, and the bundle's state.json.

The shim is the only writer of state.json; it replaces the file atomically at
every move, so a reader (the agent, now or after a restart) sees the whole
old state or the whole new one. Stdlib only (runs in the shim).
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "state.json"
SOCKET_FILE = "shim.sock"


class Status(str, enum.Enum):
    """Where a task is in its life; it only moves forward."""

    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset({Status.RUNNING, Status.STOPPED}),
    Status.RUNNING: frozenset({Status.STOPPED}),
    Status.STOPPED: frozenset(),
}


class TransitionError(ValueError):
    """A move the table does not allow (e.g. starting a stopped task)."""


def check_transition(current: Status, new: Status) -> None:
    """Raise TransitionError unless `current` may move to `new`."""
    if new not in TRANSITIONS[current]:
        raise TransitionError(f"container is {current.value}, cannot become {new.value}")


@dataclass
class ExitStatus:
    """How a task ended: exit code (128+signal when killed), OOM, when."""

    exit_code: int
    oom_killed: bool = False
    finished_at: str = ""
    error: str = ""


@dataclass
class TaskState:
    """What state.json holds: the live task's process and, once stopped, its exit."""

    id: str
    status: Status = Status.CREATED
    pid: int = 0              # the container's init, as the host sees it
    shim_pid: int = 0
    shim_start_time: int = 0  # /proc/<pid>/stat field 22, to tell a reused pid apart
    created_at: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""

    def exit_status(self) -> ExitStatus | None:
        """The exit, once the task is stopped."""
        if self.status is not Status.STOPPED:
            return None
        return ExitStatus(self.exit_code if self.exit_code is not None else 255,
                          self.oom_killed, self.finished_at, self.error)

    def move(self, new: Status) -> None:
        """Change status through the transition table."""
        check_transition(self.status, new)
        self.status = new

    def to_json(self) -> dict:
        # Not dataclasses.asdict: its deep copies are code and objects a shim would touch for nothing.
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["status"] = self.status.value
        return data

    @classmethod
    def from_json(cls, data: dict) -> "TaskState":
        data = dict(data)
        data["status"] = Status(data.get("status", "created"))
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def write_state(bundle: Path | str, state: TaskState, *, sync: bool = True) -> None:
    """Replace bundle/state.json atomically (write, fsync, rename).

    sync=False leaves out the fsync, for a writer on someone's critical path:
    it calls sync_state() once it has answered (readers see the new state at
    once either way; only a host crash in between could lose it).
    """
    write_json_atomic(os.path.join(bundle, STATE_FILE), state.to_json(), sync=sync)


def sync_state(bundle: Path | str) -> None:
    """Make the last write_state(sync=False) durable (the file and its rename)."""
    try:
        fd = os.open(os.path.join(bundle, STATE_FILE), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # the bundle was deleted meanwhile: nothing left to keep
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_state(bundle: Path) -> TaskState:
    """Read bundle/state.json; FileNotFoundError if the shim never wrote one."""
    with open(bundle / STATE_FILE) as f:
        return TaskState.from_json(json.load(f))


def write_json_atomic(path: Path | str, data: dict, *, sync: bool = True) -> None:
    """Write JSON to path so that readers never see a partial file (fsynced first unless sync=False)."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    # Plain fds, not open(): a text file's machinery is pages an idle shim would copy for nothing.
    payload = json.dumps(data).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        while payload:
            payload = payload[os.write(fd, payload):]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def process_start_time(pid: int) -> int | None:
    """The start time of pid (clock ticks since boot), None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may contain spaces and parentheses; fields after the last ')' are fixed.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])
