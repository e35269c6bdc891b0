"""The node registry: node records, presence leases and name resolution.

A node's record (`nodes/<id>`) is written at its first registration and
keeps the users' spec (availability, labels); the description is the
agent's and is replaced at each registration. Presence (`presence/<id>`)
is bound to a lease the agent renews through heartbeats: a node is Ready
while that key exists and Down once the lease has expired.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from controller.store import Check, Entry, Store
from kran import errors
from kran.api.v1 import nodes_pb2
from kran.defaults import split_hostport

if TYPE_CHECKING:
    from controller.events import EventLog

log = logging.getLogger(__name__)

NODE_ID = re.compile(r"^[a-z0-9]{25}$")
AVAILABILITIES = ("ACTIVE", "PAUSE", "DRAIN")
_UPDATE_RETRIES = 20     # optimistic rewrites of a node's spec before giving up
_CREATE_RETRIES = 5


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _timestamp(value: str) -> Timestamp:
    stamp = Timestamp()
    if value:
        stamp.FromDatetime(datetime.fromisoformat(value))
    return stamp


def validate_registration(node_id: str, description: nodes_pb2.NodeDescription) -> None:
    """Raise errors.InvalidArgument unless a Register request is well formed."""
    if not NODE_ID.match(node_id):
        raise errors.InvalidArgument(
            f"invalid node id {node_id!r}: expected 25 lowercase letters or digits")
    if not description.hostname:
        raise errors.InvalidArgument("node description has no hostname")
    try:
        _, port = split_hostport(description.address, 0)
    except ValueError as exc:
        raise errors.InvalidArgument(
            f"invalid node address {description.address!r}: {exc}") from None
    if port == 0:
        raise errors.InvalidArgument(
            f"invalid node address {description.address!r}: expected host:port")


@dataclass(frozen=True)
class NodeState:
    """A node's record joined with whether its presence key exists."""

    record: Entry
    ready: bool

    @property
    def id(self) -> str:
        return self.record.value["id"]

    @property
    def hostname(self) -> str:
        return self.record.value["description"].get("hostname", "")

    @property
    def address(self) -> str:
        return self.record.value["description"].get("address", "")

    def to_proto(self) -> nodes_pb2.Node:
        """The public Node message."""
        value = self.record.value
        node = nodes_pb2.Node(
            id=value["id"],
            status=nodes_pb2.NODE_STATUS_READY if self.ready else nodes_pb2.NODE_STATUS_DOWN,
            availability=nodes_pb2.NodeAvailability.Value(
                "NODE_AVAILABILITY_" + value.get("availability", "ACTIVE")),
            labels=value.get("labels", {}),
            status_message="" if self.ready else "heartbeat lease expired",
        )
        json_format.ParseDict(value["description"], node.description, ignore_unknown_fields=True)
        node.created_at.CopyFrom(_timestamp(value.get("created_at", "")))
        node.updated_at.CopyFrom(_timestamp(value.get("updated_at", "")))
        return node


def _sort_key(node: NodeState) -> tuple[str, str]:
    return node.hostname, node.id


class NodeRegistry:
    """Registration, heartbeats and lookups of nodes, over a Store."""

    def __init__(self, store: Store, ttl: int, events: EventLog | None = None) -> None:
        self.store = store
        self.ttl = ttl
        self.events = events

    async def announce(self, action: str, node_id: str, hostname: str) -> None:
        """Record a node event (create, update, remove), when there is an event log."""
        if self.events is not None:
            await self.events.emit("node", action, node_id, {"name": hostname} if hostname else {},
                                   node_id=node_id, node_name=hostname)

    async def register(self, node_id: str, description: nodes_pb2.NodeDescription) -> int:
        """Record the node, grant it a presence lease and return the lease id."""
        validate_registration(node_id, description)
        described = json_format.MessageToDict(description, preserving_proto_field_name=True)
        created = await self._write_record(node_id, described)
        await self.announce("create" if created else "update", node_id, description.hostname)
        previous = await self.store.get(f"presence/{node_id}")
        lease = await self.store.grant_lease(self.ttl)
        await self.store.put(f"presence/{node_id}",
                             {"node_id": node_id, "lease": lease, "since": _now()}, lease=lease)
        if previous is not None and previous.lease and previous.lease != lease:
            # The key now lives on the new lease, so revoking the old one deletes nothing.
            await self.store.revoke_lease(previous.lease)
        log.info("node registered", extra={"node": node_id, "hostname": description.hostname,
                                           "address": description.address, "lease": lease})
        return lease

    async def _write_record(self, node_id: str, described: dict[str, Any]) -> bool:
        """Write the node's record; True if it was new."""
        key = f"nodes/{node_id}"
        for _ in range(_CREATE_RETRIES):
            current = await self.store.get(key)
            now = _now()
            try:
                if current is None:
                    await self.store.create(key, {
                        "id": node_id, "description": described, "availability": "ACTIVE",
                        "labels": {}, "created_at": now, "updated_at": now})
                else:
                    await self.store.update(
                        key, {**current.value, "description": described, "updated_at": now},
                        current.mod_revision)
                return current is None
            except (errors.AlreadyExists, errors.Conflict):
                continue  # another replica wrote it meanwhile: read again
        raise errors.Conflict(f"node {node_id} is being registered concurrently; try again")

    async def heartbeat(self, node_id: str, lease_id: int) -> None:
        """Renew the node's lease; errors.NotFound tells the agent to register again."""
        presence = await self.store.get(f"presence/{node_id}")
        if presence is None or presence.lease != lease_id:
            raise errors.NotFound(f"node {node_id} has no live registration with lease "
                                  f"{lease_id}; register again")
        if await self.store.refresh_lease(lease_id) <= 0:
            raise errors.NotFound(f"lease {lease_id} of node {node_id} has expired; "
                                  "register again")

    async def states(self) -> list[NodeState]:
        """Every known node with its readiness, sorted by hostname then id."""
        records = await self.store.list("nodes/")
        present = {entry.key[len("presence/"):] for entry in await self.store.list("presence/")}
        nodes = [NodeState(record, record.value["id"] in present) for record in records]
        return sorted(nodes, key=_sort_key)

    async def ready(self) -> list[NodeState]:
        """The Ready nodes, sorted by hostname then id."""
        return [node for node in await self.states() if node.ready]

    async def resolve(self, ref: str) -> NodeState:
        """The node that ref names: an id, a hostname or a unique id prefix."""
        return resolve(await self.states(), ref)

    async def update(self, ref: str, availability: str | None = None,
                     label_add: Mapping[str, str] | None = None,
                     label_rm: Sequence[str] = ()) -> NodeState:
        """Change a node's spec: availability (ACTIVE, PAUSE, DRAIN) and labels.

        Labels are added, then removed, as docker does; removing a label the
        node does not have is errors.InvalidArgument with docker's words.
        The record is rewritten only if it is still as read (optimistic).
        """
        if availability is not None and availability not in AVAILABILITIES:
            raise errors.InvalidArgument(
                f"invalid availability {availability!r}: use active, pause or drain")
        for key in label_add or {}:
            if not key:
                raise errors.InvalidArgument("invalid label: empty name")
        node = await self.resolve(ref)
        for _ in range(_UPDATE_RETRIES):
            current = await self.store.get(node.record.key)
            if current is None:
                raise errors.NotFound(f"node {ref} not found")
            labels = {**current.value.get("labels", {}), **(label_add or {})}
            for key in label_rm:
                if key not in labels:
                    raise errors.InvalidArgument(f"key {key} doesn't exist in node's labels")
                del labels[key]
            value = {**current.value, "labels": labels}
            if availability is not None:
                value["availability"] = availability
            try:
                revision = await self.store.update(current.key, value, current.mod_revision)
            except errors.Conflict:
                continue
            log.info("node updated", extra={"node": node.id, "availability": value["availability"],
                                            "labels": ",".join(sorted(labels))})
            await self.announce("update", node.id, node.hostname)
            return NodeState(Entry(current.key, value, current.create_revision, revision),
                             node.ready)
        raise errors.Conflict(f"node {node.id} is being changed concurrently; try again")

    async def remove(self, ref: str, force: bool = False) -> NodeState:
        """Forget a node: its record, presence and allocation (a Ready one only with force).

        An agent still running registers again at its next heartbeat and comes
        back as a new record with the same id.
        """
        # Imported here: the scheduler's modules import this one.
        from controller.scheduler import allocations  # noqa: PLC0415

        node = await self.resolve(ref)
        if node.ready and not force:
            raise errors.FailedPrecondition(
                f"node {node.hostname} is not down and can't be removed")
        presence = await self.store.get(f"presence/{node.id}")
        try:
            await self.store.transaction(
                [Check.unchanged(node.record)], {},
                [node.record.key, f"presence/{node.id}", allocations.key(node.id)])
        except errors.Conflict:
            raise errors.Conflict(f"node {node.hostname} changed meanwhile; try again") from None
        if presence is not None and presence.lease:
            await self.store.revoke_lease(presence.lease)
        log.info("node removed", extra={"node": node.id, "hostname": node.hostname,
                                        "forced": force})
        await self.announce("remove", node.id, node.hostname)
        return node


def resolve(nodes: list[NodeState], ref: str) -> NodeState:
    """Pick the node named by ref among nodes, Docker's way.

    An exact id wins, then a hostname (if several nodes share it, the one
    Ready node among them), then a unique id prefix.
    """
    if not ref:
        raise errors.InvalidArgument("no node given")
    for node in nodes:
        if node.id == ref:
            return node
    named = [node for node in nodes if node.hostname == ref]
    if len(named) > 1:
        named = [node for node in named if node.ready] or named
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise errors.InvalidArgument(
            f"node name {ref!r} is ambiguous ({len(named)} nodes have it); use the node id")
    prefixed = [node for node in nodes if node.id.startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1:
        raise errors.InvalidArgument(
            f"node id prefix {ref!r} is ambiguous ({len(prefixed)} nodes match); "
            "give more characters")
    raise errors.NotFound(f"node {ref} not found")
