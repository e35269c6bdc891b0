"""Container records, name reservations and observed state, in etcd.

Keys (docs/architecture.md, "Containers"):

    containers/<id>          the record: {"id", "name", "node_id", "created", "spec"}
    names/containers/<name>  the reservation: {"id"}
    status/containers/<id>   observed state: {"node_id", "status", "sequence", "state"}

`spec` and `state` hold serialized protobuf messages (base64): the rest of
the Container (image id, path, args, effective config) and the
ContainerState. Decoding them is ~40x faster than JSON mapping, which keeps
List fast with thousands of containers; the plain fields beside them are
what the keys' readers need without decoding (and what etcdctl shows).

The controller writes records and names; states are the agents' (see
`write_state`), except that a container missing from its node's full
report is marked dead.

With an EventLog, the store also records the container events (Docker's
actions): create once the agent has made the container, rename, destroy,
and from the observed states start, die (exitCode), oom, pause and unpause.
Only the write that wins its transaction emits, so each happens once
however many controllers apply the reports.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.protobuf.timestamp_pb2 import Timestamp

from controller import names
from controller.scheduler import allocations
from controller.store import Check, Entry, Store
from kran import errors
from kran.api.v1 import containers_pb2, nodes_pb2

if TYPE_CHECKING:
    from controller.events import EventLog

log = logging.getLogger(__name__)

RECORDS = "containers/"
NAMES = "names/containers/"
STATES = "status/containers/"
GONE = "container is gone from its node"

_ID = re.compile(r"[a-f0-9]{64}")
_HEX = re.compile(r"[a-f0-9]+")
_RETRIES = 10           # read-modify-write attempts before giving up on a busy key
_NAME_ATTEMPTS = 10     # generated names tried before giving up
_REPORT_BATCH = 64      # reports written concurrently
_BULK = 16              # reports above this read the whole prefix instead of each key


def _encode(message: object) -> str:
    return base64.b64encode(message.SerializeToString()).decode()  # type: ignore[attr-defined]


def _timestamp(value: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromJsonString(value)
    return stamp


def name_conflict(name: str, holder: str) -> errors.AlreadyExists:
    """Docker's answer to a name that is taken."""
    return errors.AlreadyExists(
        f'Conflict. The container name "/{name}" is already in use by container "{holder}". '
        "You have to remove (or rename) that container to be able to reuse that name.")


@dataclass(frozen=True)
class Record:
    """A container's record as read from etcd."""

    entry: Entry

    @property
    def id(self) -> str:
        return self.entry.value["id"]

    @property
    def name(self) -> str:
        return self.entry.value["name"]

    @property
    def node_id(self) -> str:
        return self.entry.value["node_id"]

    def container(self, state: containers_pb2.ContainerState | None = None
                  ) -> containers_pb2.Container:
        """The Container message; without a stored state it shows as created."""
        value = self.entry.value
        container = containers_pb2.Container.FromString(base64.b64decode(value["spec"]))
        container.id, container.name, container.node_id = value["id"], value["name"], value["node_id"]
        container.created.CopyFrom(_timestamp(value["created"]))
        if "placement" in value:
            container.placement.ParseFromString(base64.b64decode(value["placement"]))
        if state is not None:
            container.state.CopyFrom(state)
        else:
            container.state.status = "created"
        return container


def decode_state(entry: Entry) -> containers_pb2.ContainerState:
    """The ContainerState stored at a status/containers/ entry."""
    return containers_pb2.ContainerState.FromString(base64.b64decode(entry.value["state"]))


def _record_value(container_id: str, name: str, node_id: str, created: str,
                  container: containers_pb2.Container) -> dict[str, str]:
    spec = containers_pb2.Container(image_id=container.image_id, path=container.path,
                                    args=container.args, config=container.config)
    return {"id": container_id, "name": name, "node_id": node_id, "created": created,
            "spec": _encode(spec)}


def _made_by_agent(value: Mapping[str, Any]) -> bool:
    """Whether a record's container was made on its node (the agent resolved its image).

    A record whose agent refused the create is forgotten without a destroy
    event, since no create event was recorded for it either.
    """
    spec = containers_pb2.Container.FromString(base64.b64decode(value["spec"]))
    return bool(spec.image_id)


def _state_value(node_id: str, state: containers_pb2.ContainerState) -> dict[str, object]:
    return {"node_id": node_id, "status": state.status, "sequence": state.sequence,
            "state": _encode(state)}


def new_id() -> str:
    """A container id: 64 random hex digits."""
    return secrets.token_hex(32)


def transitions(old: containers_pb2.ContainerState | None,
                new: containers_pb2.ContainerState) -> list[tuple[str, dict[str, str]]]:
    """The container events (action, extra attributes) between two observed states, oldest first.

    Start and finish times tell what happened even when the states in
    between were never seen: a container that ran and exited meanwhile
    gives start then die; one restarted meanwhile gives die then start.
    """
    old = old if old is not None else containers_pb2.ContainerState()
    found: list[tuple[int, int, str, dict[str, str]]] = []
    started = new.HasField("started_at") and new.started_at != old.started_at
    if started:
        found.append((new.started_at.ToNanoseconds(), 2, "start", {}))
    if new.HasField("finished_at") and new.finished_at != old.finished_at:
        finished = new.finished_at.ToNanoseconds()
        if new.oom_killed:
            found.append((finished, 0, "oom", {}))
        found.append((finished, 1, "die", {"exitCode": str(new.exit_code)}))
    if not started and (old.status, new.status) == ("running", "paused"):
        found.append((0, 0, "pause", {}))
    if not started and (old.status, new.status) == ("paused", "running"):
        found.append((0, 0, "unpause", {}))
    found.sort(key=lambda item: item[:2])
    return [(action, extra) for _, _, action, extra in found]


class ContainerStore:
    """Records, names and states of containers over a Store (and their events, given an EventLog)."""

    def __init__(self, store: Store, events: EventLog | None = None) -> None:
        self.store = store
        self.events = events
        self._hostnames: dict[str, str] = {}

    # -- events ------------------------------------------------------------

    async def announce(self, action: str, value: Mapping[str, Any],
                       extra: Mapping[str, str] | None = None) -> None:
        """Record a container event for the record value (attributes: labels, image, name, extra)."""
        if self.events is None:
            return
        spec = containers_pb2.Container.FromString(base64.b64decode(value["spec"]))
        attributes = {**spec.config.labels, "image": spec.config.image, "name": value["name"],
                      **(extra or {})}
        node_id = value["node_id"]
        await self.events.emit("container", action, value["id"], attributes,
                               node_id=node_id, node_name=await self._hostname(node_id))

    async def _hostname(self, node_id: str) -> str:
        """A node's hostname for events, read once per node (hostnames do not change)."""
        if node_id not in self._hostnames:
            try:
                entry = await self.store.get(f"nodes/{node_id}")
            except errors.KranError:
                return ""
            self._hostnames[node_id] = (
                entry.value.get("description", {}).get("hostname", "") if entry else "")
        return self._hostnames[node_id]

    async def _announce_states(self, value: Mapping[str, Any],
                               old: containers_pb2.ContainerState | None,
                               new: containers_pb2.ContainerState) -> None:
        for action, extra in transitions(old, new):
            await self.announce(action, value, extra)

    # -- records and names -------------------------------------------------

    async def reserve(self, name: str, node_id: str, config: containers_pb2.ContainerConfig,
                      container_id: str = "",
                      placement: containers_pb2.Placement | None = None) -> Record:
        """Reserve name (made up when empty) and write a new record, in one transaction.

        container_id is the id the caller made (and placed with), else a new
        one; placement is kept in the record, as asked. A taken name is
        errors.AlreadyExists with Docker's message; a made-up name that
        collides is replaced by another.
        """
        now = Timestamp()
        now.GetCurrentTime()
        created = now.ToJsonString()
        container_id = container_id or new_id()
        for attempt in range(_NAME_ATTEMPTS):
            chosen = name or names.generate(attempt // 3)
            value = _record_value(container_id, chosen, node_id, created,
                                  containers_pb2.Container(config=config))
            if placement is not None:
                value["placement"] = _encode(placement)
            try:
                await self.store.transaction(
                    [Check.absent(NAMES + chosen), Check.absent(RECORDS + container_id)],
                    {NAMES + chosen: {"id": container_id}, RECORDS + container_id: value})
            except errors.Conflict:
                holder = await self.store.get(NAMES + chosen)
                if name and holder is not None:
                    raise name_conflict(chosen, holder.value["id"]) from None
                continue
            log.info("container reserved", extra={"container": container_id, "container_name": chosen,
                                                  "node": node_id})
            return Record(Entry(RECORDS + container_id, value, 0, 0))
        raise errors.Conflict("could not reserve a container name; try again")

    async def record(self, container_id: str) -> Record | None:
        """The record of a full id, or None."""
        entry = await self.store.get(RECORDS + container_id)
        return Record(entry) if entry is not None else None

    async def resolve(self, ref: str) -> Record:
        """The container ref names: a full id, a name ("/name" too) or a unique id prefix."""
        if not ref:
            raise errors.InvalidArgument("no container given")
        if _ID.fullmatch(ref):
            found = await self.record(ref)
            if found is not None:
                return found
        bare = ref.removeprefix("/")
        if bare:
            reservation = await self.store.get(NAMES + bare)
            if reservation is not None:
                found = await self.record(reservation.value["id"])
                if found is not None:
                    return found
        if _HEX.fullmatch(ref):
            keys = await self.store.keys(RECORDS + ref)
            if len(keys) > 1:
                raise errors.InvalidArgument(
                    f"multiple containers found with provided prefix: {ref}")
            if keys:
                found = await self.record(keys[0][len(RECORDS):])
                if found is not None:
                    return found
        raise errors.NotFound(f"No such container: {ref}")

    async def store_created(self, record: Record,
                            created: containers_pb2.Container) -> Record:
        """Keep the agent's effective container (config, image id, path, args) and its state."""
        # A new container has no stored state yet, so the state goes in the
        # record's transaction (one etcd round trip instead of three). If the
        # agent's own report got there first, the state is written as any
        # report is, by sequence.
        state_key = STATES + record.id
        with_state = True
        for _ in range(_RETRIES):
            current = await self.store.get(record.entry.key)
            if current is None:
                raise errors.NotFound(f"No such container: {record.id}")
            value = {**current.value, **_record_value(
                record.id, current.value["name"], record.node_id,
                created.created.ToJsonString() if created.HasField("created")
                else current.value["created"], created)}
            checks, puts = [Check.unchanged(current)], {current.key: value}
            if with_state:
                checks.append(Check.absent(state_key))
                puts[state_key] = _state_value(record.node_id, created.state)
            try:
                await self.store.transaction(checks, puts)
            except errors.Conflict:
                with_state = False
                continue
            await self.announce("create", value)
            if not with_state:
                await self.write_state(record.id, record.node_id, created.state)
            else:
                await self._announce_states(value, None, created.state)
            return Record(Entry(current.key, value, current.create_revision, 0))
        raise errors.Conflict(f"container {record.id} is being changed concurrently; try again")

    async def rename(self, record: Record, new_name: str) -> Record:
        """Move record to new_name: reserve it, free the old one, update the record, atomically."""
        for _ in range(_RETRIES):
            current = await self.store.get(record.entry.key)
            if current is None:
                raise errors.NotFound(f"No such container: {record.id}")
            old = await self.store.get(NAMES + current.value["name"])
            checks = [Check.absent(NAMES + new_name), Check.unchanged(current)]
            deletes = []
            if old is not None and old.value["id"] == record.id:
                checks.append(Check.unchanged(old))
                deletes.append(old.key)
            value = {**current.value, "name": new_name}
            try:
                await self.store.transaction(
                    checks, {NAMES + new_name: {"id": record.id}, current.key: value}, deletes)
            except errors.Conflict:
                holder = await self.store.get(NAMES + new_name)
                if holder is not None:
                    raise name_conflict(new_name, holder.value["id"]) from None
                continue
            log.info("container renamed", extra={"container": record.id,
                                                 "old_name": current.value["name"],
                                                 "new_name": new_name})
            await self.announce("rename", value, {"oldName": "/" + current.value["name"]})
            return Record(Entry(current.key, value, current.create_revision, 0))
        raise errors.Conflict(f"container {record.id} is being changed concurrently; try again")

    async def forget(self, container_id: str) -> bool:
        """Delete a container's record, its name (if still its own), state and reservation
        on its node (allocations/<node>), in one transaction; False if unknown."""
        for _ in range(_RETRIES):
            current = await self.store.get(RECORDS + container_id)
            if current is None:
                await self.store.delete(STATES + container_id)
                return False
            reservation, allocation = await asyncio.gather(
                self.store.get(NAMES + current.value["name"]),
                self.store.get(allocations.key(current.value["node_id"])))
            checks = [Check.unchanged(current)]
            puts = {}
            deletes = [current.key, STATES + container_id]
            if reservation is not None and reservation.value["id"] == container_id:
                checks.append(Check.unchanged(reservation))
                deletes.append(reservation.key)
            released = allocations.without(allocation, [container_id]) if allocation else None
            if released is not None:
                checks.append(Check.unchanged(allocation))
                if released["containers"]:
                    puts[allocation.key] = released
                else:
                    deletes.append(allocation.key)
            try:
                await self.store.transaction(checks, puts, deletes)
            except errors.Conflict:
                continue
            log.info("container forgotten", extra={"container": container_id,
                                                   "container_name": current.value["name"]})
            if _made_by_agent(current.value):
                await self.announce("destroy", current.value)
            return True
        raise errors.Conflict(f"container {container_id} is being changed concurrently; try again")

    # -- observed state ----------------------------------------------------

    async def state(self, container_id: str) -> containers_pb2.ContainerState | None:
        """The stored state of a container, or None."""
        entry = await self.store.get(STATES + container_id)
        return decode_state(entry) if entry is not None else None

    async def write_state(self, container_id: str, node_id: str,
                          state: containers_pb2.ContainerState,
                          known: tuple[Entry | None, Entry | None] | None = None) -> bool:
        """Store state if its sequence is newer than the stored one; True if written.

        A state for a container without a record, or whose record is on
        another node, is ignored (and logged). `known` is the (record,
        state) entries already read, to spare the first reads.
        """
        for _ in range(_RETRIES):
            if known is None:
                record, stored = await asyncio.gather(
                    self.store.get(RECORDS + container_id), self.store.get(STATES + container_id))
            else:
                (record, stored), known = known, None
            if record is None or record.value["node_id"] != node_id:
                log.info("state report for an unknown container ignored",
                         extra={"container": container_id, "node": node_id})
                return False
            if stored is not None and int(stored.value["sequence"]) >= state.sequence:
                return False
            checks = [Check(record.key, "create", record.create_revision),
                      Check.unchanged(stored) if stored is not None
                      else Check.absent(STATES + container_id)]
            try:
                await self.store.transaction(
                    checks, {STATES + container_id: _state_value(node_id, state)})
            except errors.Conflict:
                continue
            if self.events is not None:
                await self._announce_states(
                    record.value, decode_state(stored) if stored is not None else None, state)
            return True
        raise errors.Conflict(f"state of container {container_id} is being written "
                              "concurrently; try again")

    async def apply_reports(self, node_id: str, reports: list[nodes_pb2.ContainerReport],
                            full: bool) -> None:
        """Apply an agent's ReportContainers: newer states, removals, and with full the gone."""
        if full or len(reports) > _BULK:
            records = {e.key[len(RECORDS):]: e for e in await self.store.list(RECORDS)}
            states = {e.key[len(STATES):]: e for e in await self.store.list(STATES)}
            known = {r.id: (records.get(r.id), states.get(r.id)) for r in reports}
        else:
            known = {}

        async def apply(report: nodes_pb2.ContainerReport) -> None:
            if report.removed:
                record = await self.record(report.id)
                if record is not None and record.node_id == node_id:
                    await self.forget(report.id)
                return
            await self.write_state(report.id, node_id, report.state, known.get(report.id))

        for start in range(0, len(reports), _REPORT_BATCH):
            await asyncio.gather(*(apply(r) for r in reports[start:start + _REPORT_BATCH]))
        if full:
            reported = {r.id for r in reports}
            missing = [(record, states.get(cid)) for cid, record in records.items()
                       if record.value["node_id"] == node_id and cid not in reported]
            for start in range(0, len(missing), _REPORT_BATCH):
                await asyncio.gather(*(self._mark_gone(record, stored) for record, stored
                                       in missing[start:start + _REPORT_BATCH]))

    async def _mark_gone(self, record: Entry, stored: Entry | None) -> None:
        """Show a container its node no longer has as dead (the user removes it)."""
        state = decode_state(stored) if stored is not None else containers_pb2.ContainerState()
        if state.status == "dead" and state.error == GONE:
            return
        state.status, state.error, state.pid = "dead", GONE, 0
        container_id = record.value["id"]
        check = (Check.unchanged(stored) if stored is not None
                 else Check.absent(STATES + container_id))
        try:
            await self.store.transaction(
                [check, Check(record.key, "create", record.create_revision)],
                {STATES + container_id: _state_value(record.value["node_id"], state)})
        except errors.Conflict:
            return  # a newer state or a removal won the race: that is the truth
        log.warning("container is gone from its node", extra={
            "container": container_id, "node": record.value["node_id"]})

    # -- listings ----------------------------------------------------------

    async def all(self) -> list[containers_pb2.Container]:
        """Every container with its stored state (two prefix reads)."""
        records, states = await asyncio.gather(self.store.list(RECORDS), self.store.list(STATES))
        by_id = {e.key[len(STATES):]: e for e in states}
        out = []
        for entry in records:
            stored = by_id.get(entry.key[len(RECORDS):])
            out.append(Record(entry).container(decode_state(stored) if stored else None))
        return out

    async def count_by_status(self) -> Counter[str]:
        """How many containers are in each status (records without a state count as created)."""
        ids, states = await asyncio.gather(self.store.keys(RECORDS), self.store.list(STATES))
        status = {e.key[len(STATES):]: e.value["status"] for e in states}
        return Counter(status.get(key[len(RECORDS):], "created") for key in ids)
