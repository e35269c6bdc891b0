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
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from controller.store import Entry, Store
from kran import errors
from kran.api.v1 import nodes_pb2
from kran.defaults import split_hostport

log = logging.getLogger(__name__)

NODE_ID = re.compile(r"^[a-z0-9]{25}$")
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

    def __init__(self, store: Store, ttl: int) -> None:
        self.store = store
        self.ttl = ttl

    async def register(self, node_id: str, description: nodes_pb2.NodeDescription) -> int:
        """Record the node, grant it a presence lease and return the lease id."""
        validate_registration(node_id, description)
        described = json_format.MessageToDict(description, preserving_proto_field_name=True)
        await self._write_record(node_id, described)
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

    async def _write_record(self, node_id: str, described: dict[str, Any]) -> None:
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
                return
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
