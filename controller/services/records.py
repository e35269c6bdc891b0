"""Service and task records as they are kept in etcd.

Keys (docs/architecture.md, "Services and leadership"):

    services/<id>                 {"id", "name", "spec", "previous_spec", "created_at",
                                   "updated_at", "update_status", "force", "digest"}
    names/services/<name>         {"id"}
    tasks/<service id>/<task id>  a Task (below), written only by the leader

`spec` and `previous_spec` are serialized ServiceSpec messages (base64);
times are unix seconds. `digest` names the task template (the container
config, the placement and the force counter): a task whose digest differs
from its service's runs an old template and is replaced by a rolling update.
A service's version is the mod revision of its record.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from controller.store import Entry
from kran.api.v1 import containers_pb2, services_pb2

SERVICES = "services/"
NAMES = "names/services/"
TASKS = "tasks/"

ID_LENGTH = 25
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"

# Labels every task container carries (Swarm's, under kran's namespace).
LABEL_SERVICE_ID = "com.kran.service.id"
LABEL_SERVICE_NAME = "com.kran.service.name"
LABEL_TASK_ID = "com.kran.task.id"
LABEL_TASK_SLOT = "com.kran.task.slot"


def new_id() -> str:
    """A service or task id: 25 random lowercase letters and digits (about 129 bits)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))


def task_prefix(service_id: str) -> str:
    """The key prefix of a service's tasks."""
    return f"{TASKS}{service_id}/"


def task_key(service_id: str, task_id: str) -> str:
    """The key of one task."""
    return f"{TASKS}{service_id}/{task_id}"


def timestamp(seconds: float) -> Timestamp:
    """A protobuf Timestamp of unix seconds (unset for 0)."""
    stamp = Timestamp()
    if seconds:
        stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _encode(message: Any) -> str:
    return base64.b64encode(message.SerializeToString(deterministic=True)).decode()


def encode_spec(spec: services_pb2.ServiceSpec | None) -> str:
    """A spec as stored ("" for none)."""
    return _encode(spec) if spec is not None else ""


def decode_spec(value: str) -> services_pb2.ServiceSpec | None:
    """The stored spec, None for ""."""
    return services_pb2.ServiceSpec.FromString(base64.b64decode(value)) if value else None


def template_digest(spec: services_pb2.ServiceSpec, force: int) -> str:
    """The digest of what a task runs: its container config, its placement and the force counter."""
    hasher = hashlib.sha256()
    hasher.update(spec.task.SerializeToString(deterministic=True))
    hasher.update(b"\0")
    hasher.update(spec.placement.SerializeToString(deterministic=True))
    hasher.update(b"\0%d" % force)
    return hasher.hexdigest()[:16]


@dataclass(frozen=True)
class UpdateState:
    """A service's update status: "" (none), updating, paused, completed, rollback_* ."""

    state: str = ""
    started_at: float = 0.0
    completed_at: float = 0.0
    message: str = ""

    @property
    def rolling_back(self) -> bool:
        """Whether this is a rollback (so rollback_config applies)."""
        return self.state.startswith("rollback")

    @property
    def paused(self) -> bool:
        """Whether the update waits for a user."""
        return self.state in ("paused", "rollback_paused")

    @property
    def active(self) -> bool:
        """Whether an update or rollback is under way."""
        return self.state in ("updating", "rollback_started")

    def to_proto(self) -> services_pb2.UpdateStatus:
        """The public UpdateStatus."""
        return services_pb2.UpdateStatus(
            state=self.state, started_at=timestamp(self.started_at),
            completed_at=timestamp(self.completed_at), message=self.message)


@dataclass(frozen=True)
class ServiceRecord:
    """A service as read from etcd, its spec decoded."""

    entry: Entry
    spec: services_pb2.ServiceSpec
    previous_spec: services_pb2.ServiceSpec | None

    @classmethod
    def from_entry(cls, entry: Entry) -> ServiceRecord:
        """Decode a services/ entry."""
        return cls(entry, decode_spec(entry.value["spec"]) or services_pb2.ServiceSpec(),
                   decode_spec(entry.value.get("previous_spec", "")))

    @property
    def id(self) -> str:
        return self.entry.value["id"]

    @property
    def name(self) -> str:
        return self.entry.value["name"]

    @property
    def version(self) -> int:
        return self.entry.mod_revision

    @property
    def digest(self) -> str:
        return self.entry.value["digest"]

    @property
    def force(self) -> int:
        return int(self.entry.value.get("force", 0))

    @property
    def update_status(self) -> UpdateState:
        return UpdateState(**self.entry.value.get("update_status") or {})

    def to_proto(self, running_tasks: int = 0) -> services_pb2.Service:
        """The public Service message."""
        value = self.entry.value
        service = services_pb2.Service(
            id=self.id, spec=self.spec, version=self.version,
            created_at=timestamp(value["created_at"]), updated_at=timestamp(value["updated_at"]),
            running_tasks=running_tasks)
        if self.previous_spec is not None:
            service.previous_spec.CopyFrom(self.previous_spec)
        status = self.update_status
        if status.state:
            service.update_status.CopyFrom(status.to_proto())
        return service


def service_value(service_id: str, spec: services_pb2.ServiceSpec,
                  previous: services_pb2.ServiceSpec | None, created_at: float,
                  updated_at: float, status: UpdateState, force: int) -> dict[str, Any]:
    """The stored value of a service record."""
    return {"id": service_id, "name": spec.name, "spec": encode_spec(spec),
            "previous_spec": encode_spec(previous), "created_at": created_at,
            "updated_at": updated_at, "update_status": asdict(status) if status.state else {},
            "force": force, "digest": template_digest(spec, force)}


# -- tasks -------------------------------------------------------------------

# The order task states move in; every state from "complete" on is final.
STATE_ORDER = {"new": 0, "pending": 1, "assigned": 2, "starting": 3, "running": 4,
               "complete": 5, "shutdown": 5, "failed": 5, "rejected": 5, "orphaned": 5}
TERMINAL = frozenset(s for s, order in STATE_ORDER.items() if order == 5)


@dataclass
class Task:
    """One task: a slot's attempt to run the service's template, in one container.

    `desired` is "running" or "shutdown" (the leader retired it). `final`
    marks a slot's last task when the restart policy gives up; `restarts`
    holds the times of the slot's restarts that the policy counts.
    """

    id: str
    service_id: str
    slot: int
    container_id: str
    digest: str
    spec_version: int
    image: str
    created_at: float
    node_id: str = ""
    desired: str = "running"
    state: str = "new"
    message: str = ""
    error: str = ""
    exit_code: int = 0
    status_at: float = 0.0
    running_since: float = 0.0
    final: bool = False
    restarts: tuple[float, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        return task_key(self.service_id, self.id)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def value(self) -> dict[str, Any]:
        """The stored JSON value."""
        # Not dataclasses.asdict, which deep-copies: this runs for every task the leader writes.
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["restarts"] = list(self.restarts)
        return out

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> Task:
        """A task from its stored value (unknown fields ignored)."""
        known = {k: v for k, v in value.items() if k in cls.__dataclass_fields__}
        known["restarts"] = tuple(known.get("restarts", ()))
        return cls(**known)

    def copy(self, **changes: Any) -> Task:
        """A copy with changes."""
        return replace(self, **changes)

    def to_proto(self, service_name: str, node_name: str) -> services_pb2.Task:
        """The public Task message."""
        return services_pb2.Task(
            id=self.id, service_id=self.service_id, service_name=service_name, slot=self.slot,
            node_id=self.node_id, node_name=node_name, desired_state=self.desired,
            status=services_pb2.TaskStatus(state=self.state, message=self.message,
                                           error=self.error, exit_code=self.exit_code,
                                           timestamp=timestamp(self.status_at or self.created_at)),
            container_id=self.container_id, spec_version=self.spec_version, image=self.image,
            created_at=timestamp(self.created_at))


def task_name(service_name: str, slot: int) -> str:
    """A task's name as `service ps` shows it: "web.1"."""
    return f"{service_name}.{slot}"


def container_name(service_name: str, slot: int, task_id: str) -> str:
    """A task container's name, Swarm's "<service>.<slot>.<task id>"."""
    return f"{service_name}.{slot}.{task_id}"


def task_config(service: ServiceRecord, task: Task) -> containers_pb2.ContainerConfig:
    """The container config of a task: the template, labelled, without restart or --rm.

    The leader restarts tasks (as new tasks), so the agent must not.
    """
    config = containers_pb2.ContainerConfig()
    config.CopyFrom(service.spec.task)
    config.ClearField("restart_policy")
    config.auto_remove = False
    config.labels[LABEL_SERVICE_ID] = service.id
    config.labels[LABEL_SERVICE_NAME] = service.name
    config.labels[LABEL_TASK_ID] = task.id
    config.labels[LABEL_TASK_SLOT] = str(task.slot)
    return config
