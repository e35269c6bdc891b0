"""How a container comes to be, starts and goes away, on whichever node holds it.

`Creator` is the one path for `kran run`/`create` (Containers.Create) and for
service tasks: place (the scheduler reserves room on a node, or the pinned
node), reserve the name and write the record, have the agent create the
container, keep its effective config. Removal forgets the records and the
node's reservation in one transaction (ContainerStore.forget).
"""

from __future__ import annotations

import asyncio
import logging

from controller import names
from controller.agents import AgentPool
from controller.containers import ContainerStore, Record, new_id
from controller.nodes import NodeRegistry, NodeState
from controller.scheduler import Placed, Request, Scheduler
from kran import errors
from kran.api.v1 import containers_pb2, containers_pb2_grpc

log = logging.getLogger(__name__)

Stub = containers_pb2_grpc.ContainersStub

QUICK = 60.0      # seconds for calls that only read or change a little
SLOW = 600.0      # seconds for calls that may copy or delete a filesystem


def published_ports(config: containers_pb2.ContainerConfig) -> tuple[str, ...]:
    """The host ports a config publishes, as the scheduler keeps them apart: "8080/tcp"."""
    return tuple(sorted({f"{port.host_port}/{port.protocol or 'tcp'}"
                         for port in config.ports if port.host_port}))


def request_for(config: containers_pb2.ContainerConfig, placement: containers_pb2.Placement,
                container_id: str = "", pinned: str = "", spread_key: str = "") -> Request:
    """The scheduler's Request for a container of this config (a new id unless given)."""
    return Request(key=container_id or new_id(), placement=placement, image=config.image,
                   memory_limit=config.memory_bytes, nano_cpus_limit=config.nano_cpus,
                   ports=published_ports(config), pinned=pinned, spread_key=spread_key)


def node_of(record: Record, nodes: list[NodeState]) -> NodeState | None:
    """The node among nodes that record's container lives on, None if none is."""
    for node in nodes:
        if node.id == record.node_id:
            return node
    return None


class Creator:
    """The one way a container comes to be: place (unless a node is given), reserve name+record,
    agent Create, keep the effective config."""

    def __init__(self, containers: ContainerStore, nodes: NodeRegistry, agents: AgentPool,
                 scheduler: Scheduler) -> None:
        self.containers = containers
        self.nodes = nodes
        self.agents = agents
        self.scheduler = scheduler

    def _stub(self, node: NodeState) -> Stub:
        return Stub(self.agents.channel(node.address))

    async def create(self, request: containers_pb2.CreateContainerRequest
                     ) -> containers_pb2.Container:
        """What Containers.Create does (schedule, then create_on)."""
        if not request.config.image:
            raise errors.InvalidArgument("no image given")
        name = names.validate(request.name) if request.name else ""
        wanted = request_for(request.config, request.placement, pinned=request.node)
        [placed] = await self.scheduler.place([wanted])
        if isinstance(placed, errors.KranError):
            raise placed
        return await self.create_on(placed, name, request.config)

    async def create_on(self, placed: Placed, name: str,
                        config: containers_pb2.ContainerConfig) -> containers_pb2.Container:
        """Create the container on an already placed node (container id = placed.request.key).

        On failure the reservation is released and the record forgotten, and
        the error raised.
        """
        node, container_id = placed.node, placed.request.key
        placement = placed.request.placement
        try:
            record = await self.containers.reserve(name, node.id, config, container_id, placement)
        except errors.KranError:
            await self.scheduler.release(node.id, [container_id])
            raise
        forwarded = containers_pb2.CreateContainerRequest(
            name=record.name, config=config, id=container_id)
        stub = self._stub(node)
        try:
            created = await self.agents.call(node, lambda: stub.Create(forwarded, timeout=QUICK))
        except errors.KranError as exc:
            if isinstance(exc, errors.NotFound) and str(exc).startswith("No such image"):
                self.scheduler.images.forget(node.id, config.image)
            await self.containers.forget(container_id)   # the reservation goes with it
            raise
        record = await self.containers.store_created(record, created)
        log.info("container created", extra={"container": record.id, "container_name": record.name,
                                             "node": node.id})
        created.placement.CopyFrom(placement)
        return with_node(created, record.name, node)

    async def locate(self, ref: str) -> tuple[Record, NodeState]:
        """The container ref names and its node, which must be Ready."""
        # Both reads at once: every forwarded call (attach of `run` first) waits on them.
        record, nodes = await asyncio.gather(self.containers.resolve(ref), self.nodes.states())
        node = node_of(record, nodes)
        if node is None:
            raise errors.FailedPrecondition(
                f"container {record.name} is on node {record.node_id}, which is no longer known")
        if not node.ready:
            raise errors.FailedPrecondition(
                f"container {record.name} is on node {node.hostname} ({node.id}), which is down")
        return record, node

    async def start(self, container_id: str) -> containers_pb2.Container:
        """Start it on its node (as Containers.Start) and keep the answered state."""
        record, node = await self.locate(container_id)
        return await self.start_on(record.id, record.name, node)

    async def start_on(self, container_id: str, name: str,
                       node: NodeState) -> containers_pb2.Container:
        """Start a container whose node is known already (a task just created there)."""
        stub = self._stub(node)
        forwarded = containers_pb2.StartContainerRequest(container=container_id)
        container = await self.agents.call(node, lambda: stub.Start(forwarded, timeout=QUICK))
        await self.containers.write_state(container_id, node.id, container.state)
        return with_node(container, name, node)

    async def remove(self, container_id: str, force: bool = True, volumes: bool = False) -> None:
        """Remove it (as Containers.Remove), forget its records and release its reservation.

        A container whose node is down or gone is only forgotten, and only
        with force; a node that no longer has it (NOT_FOUND) lets it be forgotten.
        """
        record = await self.containers.resolve(container_id)
        node = node_of(record, await self.nodes.states())
        if node is None or not node.ready:
            where = f"node {node.hostname} ({node.id})" if node else f"node {record.node_id}"
            if not force:
                raise errors.FailedPrecondition(
                    f"container {record.name} is on {where}, which is down; "
                    "remove it with force to forget it")
            log.warning("forgetting a container on a node that is down",
                        extra={"container": record.id, "node": record.node_id})
        else:
            forwarded = containers_pb2.RemoveContainerRequest(
                container=record.id, force=force, volumes=volumes)
            stub = self._stub(node)
            try:
                await self.agents.call(node, lambda: stub.Remove(forwarded, timeout=SLOW))
            except errors.NotFound:
                pass  # the node no longer has it: the record is all that is left
        await self.containers.forget(record.id)


def with_node(container: containers_pb2.Container, name: str,
              node: NodeState) -> containers_pb2.Container:
    """An agent's Container as the cluster shows it: the controller's name, the node."""
    container.name, container.node_id, container.node_name = name, node.id, node.hostname
    return container
