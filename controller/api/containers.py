"""The controller's Containers service: records in etcd, work on the agents.

The rules (docs/architecture.md, "Containers"): Create, Start and Remove
go through controller.creation's Creator (placement by the scheduler, name
and record, the agent's Create); List and Inspect answer from etcd alone;
every other call resolves the container (full id, unique id prefix or
name) and is forwarded to its node with the full id. A Container an
agent answers carries its new state, stored if its sequence is newer than
the one in etcd.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from controller import container_filters, names
from controller.agents import AgentPool
from controller.api.streams import chain, first_message, relay
from controller.containers import ContainerStore, Record
from controller.creation import QUICK, SLOW, Creator, node_of, with_node
from controller.nodes import NodeRegistry, NodeState
from kran import errors
from kran.api.v1 import containers_pb2, containers_pb2_grpc, images_pb2

log = logging.getLogger(__name__)

Stub = containers_pb2_grpc.ContainersStub

WAIT_METHOD = "/{}/Wait".format(containers_pb2.DESCRIPTOR.services_by_name["Containers"].full_name)


class ContainersService(containers_pb2_grpc.ContainersServicer):
    """kran.api.v1.Containers for the whole cluster."""

    def __init__(self, containers: ContainerStore, nodes: NodeRegistry,
                 agents: AgentPool, creator: Creator) -> None:
        self.containers = containers
        self.nodes = nodes
        self.agents = agents
        self.creator = creator

    def _stub(self, node: NodeState) -> Stub:
        return Stub(self.agents.channel(node.address))

    # -- lookups -----------------------------------------------------------

    async def _node(self, record: Record) -> NodeState | None:
        """The node a container lives on, None if the cluster no longer knows it."""
        return node_of(record, await self.nodes.states())

    async def _locate(self, ref: str) -> tuple[Record, NodeState]:
        """The container ref names and its node, which must be Ready."""
        return await self.creator.locate(ref)

    async def _change(self, ref: str,
                      send: Callable[[Stub, str], Awaitable[containers_pb2.Container]],
                      before: tuple[str, dict[str, str]] | None = None,
                      after: str = "") -> containers_pb2.Container:
        """Forward a state-changing call; keep the state the agent answers.

        The event `before` (action, attributes) is recorded before the call
        goes to the agent if the container runs (the agent's own report of
        the exit may come before its answer), and the action `after` once
        the answered state is kept: kill, die; die, stop; as with Docker.
        """
        record, node = await self._locate(ref)
        stub = self._stub(node)
        if before is not None:
            state = await self.containers.state(record.id)
            if state is not None and state.status in ("running", "paused", "restarting"):
                await self.containers.announce(before[0], record.entry.value, before[1])
        container = await self.agents.call(node, lambda: send(stub, record.id))
        await self.containers.write_state(record.id, node.id, container.state)
        if after:
            await self.containers.announce(after, record.entry.value)
        return with_node(container, record.name, node)

    # -- records -----------------------------------------------------------

    async def Create(self, request: containers_pb2.CreateContainerRequest,
                     context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        return await self.creator.create(request)

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
        await self.creator.remove(request.container, request.force, request.volumes)
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
        return with_node(container, renamed.name, node)

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
        return await self.creator.start(request.container)

    async def Stop(self, request: containers_pb2.StopContainerRequest,
                   context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        # No deadline: the stop timeout is the container's; the client's deadline still applies.
        return await self._change(request.container, lambda stub, cid: stub.Stop(
            _with_id(request, cid)), after="stop")

    async def Restart(self, request: containers_pb2.StopContainerRequest,
                      context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        return await self._change(request.container, lambda stub, cid: stub.Restart(
            _with_id(request, cid)), after="restart")

    async def Kill(self, request: containers_pb2.KillContainerRequest,
                   context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        number = signal_number(request.signal or "KILL")
        return await self._change(request.container, lambda stub, cid: stub.Kill(
            _with_id(request, cid), timeout=QUICK),
            before=("kill", {"signal": number}) if number.isdigit() else None)

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


def signal_number(text: str) -> str:
    """A signal as Docker's kill event shows it: its number ("KILL" -> "9"); unknown text as given (the agent refuses it)."""
    name = text.strip().upper().removeprefix("SIG")
    if name.isdigit():
        return name
    try:
        return str(int(signal.Signals["SIG" + name]))
    except KeyError:
        return text


def _with_id(request: object, container_id: str) -> object:
    """A copy of request whose `container` is the full id."""
    forwarded = type(request)()  # type: ignore[operator]
    forwarded.CopyFrom(request)  # type: ignore[attr-defined]
    forwarded.container = container_id  # type: ignore[attr-defined]
    return forwarded
