"""The controller's Containers service: records in etcd, work on the agents.

The rules (docs/architecture.md, "Containers"): Create picks the node,
reserves the name and writes the record, then has the agent create the
container; List and Inspect answer from etcd alone; every other call
resolves the container (full id, unique id prefix or name) and is forwarded
to its node with the full id. A Container an agent answers carries its new
state, stored if its sequence is newer than the one in etcd.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from controller import container_filters, names
from controller.agents import AgentPool
from controller.api.streams import chain, first_message, relay
from controller.containers import ContainerStore, Record
from controller.metrics import PLACEMENT_SECONDS
from controller.nodes import NodeRegistry, NodeState
from kran import errors, reference
from kran.api.v1 import containers_pb2, containers_pb2_grpc, images_pb2

log = logging.getLogger(__name__)

Stub = containers_pb2_grpc.ContainersStub

QUICK = 60.0      # seconds for calls that only read or change a little
SLOW = 600.0      # seconds for calls that may copy or delete a filesystem
WAIT_METHOD = "/{}/Wait".format(containers_pb2.DESCRIPTOR.services_by_name["Containers"].full_name)


def image_name(image: str) -> str:
    """The image as Docker names it in "No such image": familiar with tag, or the id as given."""
    if reference.is_full_id(image):
        return image
    return reference.parse(image).familiar()


class ContainersService(containers_pb2_grpc.ContainersServicer):
    """kran.api.v1.Containers for the whole cluster."""

    def __init__(self, containers: ContainerStore, nodes: NodeRegistry,
                 agents: AgentPool) -> None:
        self.containers = containers
        self.nodes = nodes
        self.agents = agents

    def _stub(self, node: NodeState) -> Stub:
        return Stub(self.agents.channel(node.address))

    # -- placement and lookups ---------------------------------------------

    async def _place(self, pinned: str, image: str) -> NodeState:
        """The node for a new container: the pinned one, else the first Ready node with the image."""
        if pinned:
            node = await self.nodes.resolve(pinned)
            if not node.ready:
                raise errors.FailedPrecondition(f"node {node.hostname} ({node.id}) is down")
            return node
        wanted = image_name(image)
        ready = [node for node in await self.nodes.ready()
                 if node.record.value.get("availability", "ACTIVE") == "ACTIVE"]
        if not ready:
            raise errors.FailedPrecondition("no node is ready to run containers")
        request = images_pb2.InspectImageRequest(reference=image)

        async def has_image(node: NodeState) -> errors.KranError | None:
            stub = self.agents.images(node)
            try:
                await self.agents.call(node, lambda: stub.Inspect(request, timeout=QUICK))
            except errors.KranError as exc:
                return exc
            return None

        outcomes = await asyncio.gather(*(has_image(node) for node in ready))
        for node, outcome in zip(ready, outcomes):
            if outcome is None:
                return node
        for outcome in outcomes:
            if not isinstance(outcome, errors.NotFound):
                raise outcome  # that node might have had it
        raise errors.NotFound(f"No such image: {wanted}")

    async def _node(self, record: Record) -> NodeState | None:
        """The node a container lives on, None if the cluster no longer knows it."""
        return _node_of(record, await self.nodes.states())

    async def _locate(self, ref: str) -> tuple[Record, NodeState]:
        """The container ref names and its node, which must be Ready."""
        # Both reads at once: every forwarded call (attach of `run` first) waits on them.
        record, nodes = await asyncio.gather(self.containers.resolve(ref), self.nodes.states())
        node = _node_of(record, nodes)
        if node is None:
            raise errors.FailedPrecondition(
                f"container {record.name} is on node {record.node_id}, which is no longer known")
        if not node.ready:
            raise errors.FailedPrecondition(
                f"container {record.name} is on node {node.hostname} ({node.id}), which is down")
        return record, node

    def _answer(self, container: containers_pb2.Container, record: Record,
                node: NodeState) -> containers_pb2.Container:
        """An agent's Container as the cluster shows it: the controller's name, the node."""
        container.name, container.node_id, container.node_name = record.name, node.id, node.hostname
        return container

    async def _change(self, ref: str,
                      send: Callable[[Stub, str], Awaitable[containers_pb2.Container]]
                      ) -> containers_pb2.Container:
        """Forward a state-changing call; keep the state the agent answers."""
        record, node = await self._locate(ref)
        stub = self._stub(node)
        container = await self.agents.call(node, lambda: send(stub, record.id))
        await self.containers.write_state(record.id, node.id, container.state)
        return self._answer(container, record, node)

    # -- records -----------------------------------------------------------

    async def Create(self, request: containers_pb2.CreateContainerRequest,
                     context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        if not request.config.image:
            raise errors.InvalidArgument("no image given")
        name = names.validate(request.name) if request.name else ""
        started = time.perf_counter()
        node = await self._place(request.node, request.config.image)
        PLACEMENT_SECONDS.observe(time.perf_counter() - started)
        record = await self.containers.reserve(name, node.id, request.config)
        forwarded = containers_pb2.CreateContainerRequest(
            name=record.name, config=request.config, id=record.id)
        stub = self._stub(node)
        try:
            created = await self.agents.call(node, lambda: stub.Create(forwarded, timeout=QUICK))
        except errors.KranError:
            await self.containers.forget(record.id)
            raise
        record = await self.containers.store_created(record, created)
        log.info("container created", extra={"container": record.id, "container_name": record.name,
                                             "node": node.id})
        return self._answer(created, record, node)

    async def Inspect(self, request: containers_pb2.InspectContainerRequest,
                      context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        record = await self.containers.resolve(request.container)
        state, node = await asyncio.gather(self.containers.state(record.id), self._node(record))
        container = record.container(state)
        container.node_name = node.hostname if node is not None else ""
        return container

    async def List(self, request: containers_pb2.ListContainersRequest,
                   context: grpc.aio.ServicerContext) -> containers_pb2.ListContainersResponse:
        filters = {key: list(value.values) for key, value in request.filters.items()}
        container_filters.matchers(filters)  # refuse a bad filter before reading anything
        everything, nodes = await asyncio.gather(self.containers.all(), self.nodes.states())
        hostnames = {node.id: node.hostname for node in nodes}
        for container in everything:
            container.node_name = hostnames.get(container.node_id, "")
        return containers_pb2.ListContainersResponse(containers=container_filters.select(
            everything, request.all, request.limit, filters))

    async def Remove(self, request: containers_pb2.RemoveContainerRequest,
                     context: grpc.aio.ServicerContext) -> containers_pb2.RemoveContainerResponse:
        record = await self.containers.resolve(request.container)
        node = await self._node(record)
        if node is None or not node.ready:
            where = f"node {node.hostname} ({node.id})" if node else f"node {record.node_id}"
            if not request.force:
                raise errors.FailedPrecondition(
                    f"container {record.name} is on {where}, which is down; "
                    "remove it with force to forget it")
            log.warning("forgetting a container on a node that is down",
                        extra={"container": record.id, "node": record.node_id})
        else:
            forwarded = containers_pb2.RemoveContainerRequest(
                container=record.id, force=request.force, volumes=request.volumes)
            stub = self._stub(node)
            try:
                await self.agents.call(node, lambda: stub.Remove(forwarded, timeout=SLOW))
            except errors.NotFound:
                pass  # the node no longer has it: the record is all that is left
        await self.containers.forget(record.id)
        return containers_pb2.RemoveContainerResponse()

    async def Rename(self, request: containers_pb2.RenameContainerRequest,
                     context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        new_name = names.validate(request.name)
        record, node = await self._locate(request.container)
        if new_name == record.name:
            raise errors.InvalidArgument(
                "Renaming a container with the same name as its current name")
        renamed = await self.containers.rename(record, new_name)
        forwarded = containers_pb2.RenameContainerRequest(container=record.id, name=new_name)
        stub = self._stub(node)
        try:
            container = await self.agents.call(node, lambda: stub.Rename(forwarded, timeout=QUICK))
        except errors.KranError:
            await self.containers.rename(renamed, record.name)
            raise
        await self.containers.write_state(record.id, node.id, container.state)
        return self._answer(container, renamed, node)

    async def Prune(self, request: containers_pb2.PruneContainersRequest,
                    context: grpc.aio.ServicerContext) -> containers_pb2.PruneContainersResponse:
        ready = await self.nodes.ready()
        forwarded = containers_pb2.PruneContainersRequest(filters=request.filters)

        async def prune(node: NodeState) -> containers_pb2.PruneContainersResponse:
            stub = self._stub(node)
            return await self.agents.call(node, lambda: stub.Prune(forwarded, timeout=SLOW))

        results = await asyncio.gather(*(prune(node) for node in ready), return_exceptions=True)
        reply = containers_pb2.PruneContainersResponse()
        for result in results:
            if isinstance(result, containers_pb2.PruneContainersResponse):
                for container_id in result.deleted:
                    await self.containers.forget(container_id)
                reply.deleted.extend(result.deleted)
                reply.space_reclaimed += result.space_reclaimed
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return reply

    # -- state changes -----------------------------------------------------

    async def Start(self, request: containers_pb2.StartContainerRequest,
                    context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        return await self._change(request.container, lambda stub, cid: stub.Start(
            containers_pb2.StartContainerRequest(container=cid), timeout=QUICK))

    async def Stop(self, request: containers_pb2.StopContainerRequest,
                   context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        # No deadline: the stop timeout is the container's; the client's deadline still applies.
        return await self._change(request.container, lambda stub, cid: stub.Stop(
            _with_id(request, cid)))

    async def Restart(self, request: containers_pb2.StopContainerRequest,
                      context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        return await self._change(request.container, lambda stub, cid: stub.Restart(
            _with_id(request, cid)))

    async def Kill(self, request: containers_pb2.KillContainerRequest,
                   context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        return await self._change(request.container, lambda stub, cid: stub.Kill(
            _with_id(request, cid), timeout=QUICK))

    async def Wait(self, request: containers_pb2.WaitContainerRequest,
                   context: grpc.aio.ServicerContext) -> containers_pb2.WaitContainerResponse:
        record, node = await self._locate(request.container)
        call = wait_call(self.agents.channel(node.address), _with_id(request, record.id))

        async def wait() -> containers_pb2.WaitContainerResponse:
            # The agent's headers say its waiter is registered: only then tell our client.
            await call.initial_metadata()
            await context.send_initial_metadata(())
            reply = await call.read()
            if reply is grpc.aio.EOF:  # a failed call raises instead
                raise errors.Internal(f"node {node.hostname} answered Wait with nothing")
            return reply
        try:
            reply = await self.agents.call(node, wait)
        finally:
            call.cancel()
        if request.condition == "removed":
            await self.containers.forget(record.id)
        return reply

    # -- forwarded as they are ---------------------------------------------

    async def _unary(self, ref: str, send: Callable[[Stub, str], Awaitable[object]]) -> object:
        record, node = await self._locate(ref)
        stub = self._stub(node)
        return await self.agents.call(node, lambda: send(stub, record.id))

    async def Top(self, request: containers_pb2.TopRequest,
                  context: grpc.aio.ServicerContext) -> containers_pb2.TopResponse:
        return await self._unary(request.container, lambda stub, cid: stub.Top(
            _with_id(request, cid), timeout=QUICK))

    async def Diff(self, request: containers_pb2.DiffRequest,
                   context: grpc.aio.ServicerContext) -> containers_pb2.DiffResponse:
        return await self._unary(request.container, lambda stub, cid: stub.Diff(
            _with_id(request, cid), timeout=SLOW))

    async def Commit(self, request: containers_pb2.CommitRequest,
                     context: grpc.aio.ServicerContext) -> images_pb2.Image:
        record, node = await self._locate(request.container)
        stub = self._stub(node)
        image = await self.agents.call(node, lambda: stub.Commit(
            _with_id(request, record.id), timeout=SLOW))
        image.node_id, image.node_name = node.id, node.hostname
        log.info("container committed", extra={"container": record.id, "image": image.id,
                                               "node": node.id})
        return image

    async def _server_stream(self, ref: str, open_call: Callable[[Stub, str], object]
                             ) -> AsyncIterator[object]:
        record, node = await self._locate(ref)
        async for item in self.agents.stream(node, open_call(self._stub(node), record.id)):
            yield item

    async def Stats(self, request: containers_pb2.StatsRequest,
                    context: grpc.aio.ServicerContext) -> AsyncIterator[containers_pb2.ContainerStats]:
        async for item in self._server_stream(request.container, lambda stub, cid: stub.Stats(
                _with_id(request, cid))):
            yield item

    async def Logs(self, request: containers_pb2.LogsRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[containers_pb2.LogEntry]:
        async for item in self._server_stream(request.container, lambda stub, cid: stub.Logs(
                _with_id(request, cid))):
            yield item

    async def CopyFrom(self, request: containers_pb2.CopyFromRequest,
                       context: grpc.aio.ServicerContext) -> AsyncIterator[images_pb2.DataChunk]:
        async for item in self._server_stream(request.container, lambda stub, cid: stub.CopyFrom(
                _with_id(request, cid))):
            yield item

    async def CopyTo(self, request_iterator: AsyncIterator[containers_pb2.CopyToRequest],
                     context: grpc.aio.ServicerContext) -> containers_pb2.CopyToResponse:
        first = await first_message(request_iterator, "a header and the archive")
        if not first.HasField("header"):
            raise errors.InvalidArgument("the first message must carry the copy header")
        record, node = await self._locate(first.header.container)
        first.header.container = record.id
        stub = self._stub(node)
        return await self.agents.call(node, lambda: stub.CopyTo(chain(first, request_iterator)))

    async def Attach(self, request_iterator: AsyncIterator[containers_pb2.AttachRequest],
                     context: grpc.aio.ServicerContext
                     ) -> AsyncIterator[containers_pb2.AttachResponse]:
        first = await first_message(request_iterator, "the attach options")
        if not first.HasField("options"):
            raise errors.InvalidArgument("the first message must carry the attach options")
        record, node = await self._locate(first.options.container)
        first.options.container = record.id
        stub = self._stub(node)
        async for answer in relay(node, stub.Attach, first, request_iterator):
            yield answer

    async def Exec(self, request_iterator: AsyncIterator[containers_pb2.ExecRequest],
                   context: grpc.aio.ServicerContext) -> AsyncIterator[containers_pb2.ExecResponse]:
        first = await first_message(request_iterator, "the exec options")
        if not first.HasField("options"):
            raise errors.InvalidArgument("the first message must carry the exec options")
        record, node = await self._locate(first.options.container)
        first.options.container = record.id
        stub = self._stub(node)
        async for answer in relay(node, stub.Exec, first, request_iterator):
            yield answer


def wait_call(channel: grpc.aio.Channel, request: containers_pb2.WaitContainerRequest
              ) -> grpc.aio.UnaryStreamCall:
    """Containers.Wait called as a server stream, which is the same on the wire.

    grpc's Python client shows a unary call's response headers only with
    its answer; a stream shows them as they arrive, which is how a caller
    learns that the waiter is registered before the container is started.
    """
    return channel.unary_stream(
        WAIT_METHOD, request_serializer=containers_pb2.WaitContainerRequest.SerializeToString,
        response_deserializer=containers_pb2.WaitContainerResponse.FromString)(request)


def _node_of(record: Record, nodes: list[NodeState]) -> NodeState | None:
    """The node among nodes that record's container lives on, None if none is."""
    for node in nodes:
        if node.id == record.node_id:
            return node
    return None


def _with_id(request: object, container_id: str) -> object:
    """A copy of request whose `container` is the full id."""
    forwarded = type(request)()  # type: ignore[operator]
    forwarded.CopyFrom(request)  # type: ignore[attr-defined]
    forwarded.container = container_id  # type: ignore[attr-defined]
    return forwarded
