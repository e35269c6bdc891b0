"""A container as the agent keeps it: its record, on disk as <state>/containers/<id>/container.json.

The record holds what Create decided (name, image, the effective config,
path and args, the image's layer dirs) and the observed state the agent
reports (status, pid, exit, times, restart count, sequence). The directory
also holds the rootfs's overlay upper/ and work/ dirs, kept across stop and
start so changes persist as with Docker, and container.log, the json-file log.

effective_config() merges a Create request with its image's config the way
dockerd does; validate() refuses what Docker refuses at create.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import json
import os
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from agent.containers import restart
from agent.runtime.runtime import MIN_MEMORY
from agent.runtime.state import write_json_atomic
from kran import errors
from kran.api.v1 import containers_pb2

RECORD_FILE = "container.json"
DEFAULT_STOP_TIMEOUT = 10
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_ID = re.compile(r"^[0-9a-f]{64}$")
_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z")

# Statuses in which the container has (or is about to have again) a live task.
LIVE = frozenset({"running", "restarting"})


@dataclass
class ContainerRecord:
    """One container on this node: what Create decided and its observed state."""

    id: str
    name: str
    created: str                                  # RFC 3339 with nanoseconds
    image_id: str
    config: containers_pb2.ContainerConfig        # the effective configuration
    path: str
    args: list[str]
    lowers: list[Path]                            # image layer dirs, top first
    dir: Path
    state: containers_pb2.ContainerState = field(default_factory=containers_pb2.ContainerState)
    stopped_by_user: bool = False                 # a user's stop or kill: no restart policy applies
    # In memory only: exits recorded since the agent started, for next-exit waiters.
    exits: int = field(default=0, compare=False)
    removing: bool = field(default=False, compare=False)
    removed: bool = field(default=False, compare=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, compare=False, repr=False)

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def log_path(self) -> Path:
        return self.dir / "container.log"

    @property
    def running(self) -> bool:
        """Whether the container has a live task (or is between two, restarting)."""
        return self.state.status in LIVE

    def bump(self) -> None:
        """Mark a change of observed state: the sequence only grows."""
        self.state.sequence += 1

    def save(self) -> None:
        """Write container.json atomically."""
        write_json_atomic(self.dir / RECORD_FILE, {
            "id": self.id, "name": self.name, "created": self.created, "image_id": self.image_id,
            "config": json_format.MessageToDict(self.config),
            "path": self.path, "args": self.args, "lowers": [str(p) for p in self.lowers],
            "state": json_format.MessageToDict(self.state),
            "stopped_by_user": self.stopped_by_user,
        })

    @classmethod
    def load(cls, directory: Path) -> "ContainerRecord":
        """Read directory/container.json; OSError or ValueError when it cannot be read."""
        with open(directory / RECORD_FILE) as f:
            data = json.load(f)
        return cls(id=data["id"], name=data["name"], created=data["created"], image_id=data["image_id"],
                   config=json_format.ParseDict(data.get("config", {}), containers_pb2.ContainerConfig()),
                   path=data["path"], args=list(data["args"]), lowers=[Path(p) for p in data["lowers"]],
                   dir=directory,
                   state=json_format.ParseDict(data.get("state", {}), containers_pb2.ContainerState()),
                   stopped_by_user=bool(data.get("stopped_by_user")))


def load_all(root: Path) -> list[ContainerRecord]:
    """Every readable record under root (a directory without one is skipped)."""
    records = []
    if root.is_dir():
        for directory in sorted(root.iterdir()):
            try:
                records.append(ContainerRecord.load(directory))
            except (OSError, ValueError, KeyError, json_format.ParseError):
                continue
    return records


def timestamp(text: str) -> Timestamp:
    """An RFC 3339 UTC time ("...Z", up to nine fraction digits) as a Timestamp; empty -> unset."""
    stamp = Timestamp()
    match = _TIME.fullmatch(text or "")
    if match:
        year, month, day, hour, minute, second, fraction = match.groups()
        stamp.seconds = calendar.timegm((int(year), int(month), int(day), int(hour), int(minute), int(second)))
        stamp.nanos = int((fraction or "0").ljust(9, "0"))
    return stamp


def valid_name(name: str) -> str:
    """The name without a leading "/"; InvalidArgument unless Docker would accept it."""
    bare = name.removeprefix("/")
    if not _NAME.match(bare):
        raise errors.InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return bare


def valid_id(container_id: str) -> str:
    """InvalidArgument unless container_id is 64 lowercase hex digits."""
    if not _ID.match(container_id):
        raise errors.InvalidArgument(f"invalid container id {container_id!r}: expected 64 hex digits")
    return container_id


def parse_signal(text: str) -> int:
    """A signal given by name ("KILL", "SIGKILL", "kill") or number; InvalidArgument otherwise."""
    value = text.strip()
    if value.isdigit():
        number = int(value)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = value.upper().removeprefix("SIG")
        with contextlib.suppress(AttributeError):
            return int(getattr(signal.Signals, "SIG" + name))
    raise errors.InvalidArgument(f"Invalid signal: {text}")


def _env_key(entry: str) -> str:
    return entry.split("=", 1)[0]


def merge_env(first: list[str], second: list[str]) -> list[str]:
    """first, then the entries of second whose key first lacks (dockerd's merge)."""
    keys = {_env_key(e) for e in first}
    return [*first, *(e for e in second if _env_key(e) not in keys)]


def effective_config(request: containers_pb2.ContainerConfig, image: dict[str, Any],
                     container_id: str) -> containers_pb2.ContainerConfig:
    """The request merged with the image config's "config" section, as dockerd merges them.

    Env: the request's, then the image's keys it does not set. Labels: the
    image's, overridden by the request's. An entrypoint given in the request
    (even an empty one) replaces the image's and drops the image's Cmd;
    otherwise Cmd comes from the request, else the image. WorkingDir, User
    and StopSignal come from the request, else the image. The hostname
    defaults to the short id.
    """
    config = containers_pb2.ContainerConfig()
    config.CopyFrom(request)
    config.env[:] = merge_env(list(request.env), [str(e) for e in image.get("Env") or []])
    labels = {str(k): str(v) for k, v in (image.get("Labels") or {}).items()}
    labels.update(request.labels)
    config.labels.clear()
    config.labels.update(labels)
    if not request.entrypoint_set:
        config.entrypoint[:] = [str(a) for a in image.get("Entrypoint") or []]
        if not request.cmd:
            config.cmd[:] = [str(a) for a in image.get("Cmd") or []]
    config.working_dir = request.working_dir or str(image.get("WorkingDir") or "")
    config.user = request.user or str(image.get("User") or "")
    config.stop_signal = request.stop_signal or str(image.get("StopSignal") or "")
    config.hostname = request.hostname or container_id[:12]
    if not config.restart_policy.name:
        config.restart_policy.name = "no"
    if config.pids_limit < 0:
        config.pids_limit = 0  # Docker's -1: unlimited
    return config


def command(config: containers_pb2.ContainerConfig) -> tuple[str, list[str]]:
    """(path, args) of the command: entrypoint + cmd; InvalidArgument when there is none."""
    full = [*config.entrypoint, *config.cmd]
    if not full or not full[0]:
        raise errors.InvalidArgument("No command specified")
    return full[0], full[1:]


def validate(config: containers_pb2.ContainerConfig, cpus: int | None = None) -> None:
    """InvalidArgument, with Docker's message, for an effective config Docker refuses at create."""
    if config.working_dir and not config.working_dir.startswith("/"):
        raise errors.InvalidArgument(
            f"the working directory '{config.working_dir}' is invalid, it needs to be an absolute path")
    if config.memory_bytes < 0 or config.nano_cpus < 0:
        raise errors.InvalidArgument("limits cannot be negative")
    if 0 < config.memory_bytes < MIN_MEMORY:
        raise errors.InvalidArgument("Minimum memory limit allowed is 6MB")
    cpus = cpus or os.cpu_count() or 1
    if config.nano_cpus and not 10_000_000 <= config.nano_cpus <= cpus * 1_000_000_000:
        raise errors.InvalidArgument(
            f"range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available")
    if config.stop_signal:
        parse_signal(config.stop_signal)
    if config.stop_timeout < -1:
        raise errors.InvalidArgument("invalid stop timeout: it must be -1 (no timeout) or more")
    restart.validate(config.restart_policy)
    if config.auto_remove and config.restart_policy.name != "no":
        raise errors.InvalidArgument("Conflicting options: --restart and --rm")


def process_env(config: containers_pb2.ContainerConfig) -> list[str]:
    """The environment the command gets: PATH, HOSTNAME and TERM (with a TTY) under the config's."""
    defaults = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={config.hostname}"]
    if config.tty:
        defaults.append("TERM=xterm")
    return merge_env(list(config.env), defaults)
