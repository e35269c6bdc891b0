"""Channels from the controller to agents, one per agent address.

Calls go through `AgentPool.call`, which turns a failed call into the
error kind it stands for: an agent that cannot be reached becomes
errors.Unavailable naming the node and its address; an agent's own answer
(NOT_FOUND, INVALID_ARGUMENT, ...) keeps its code and message.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from controller.nodes import NodeState
from kran import errors
from kran.api.v1 import images_pb2_grpc, system_pb2_grpc

log = logging.getLogger(__name__)

T = TypeVar("T")

_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]
# A node whose agent does not even accept the connection shows as these.
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def agent_error(node: NodeState, err: grpc.aio.AioRpcError) -> errors.KranError:
    """The error kind a failed call to node's agent stands for."""
    if err.code() in _UNREACHABLE:
        return errors.Unavailable(
            f"node {node.hostname} ({node.address}) is unreachable: {err.details()}")
    return errors.from_rpc_error(err)


class AgentPool:
    """Keeps one grpc.aio channel per agent address."""

    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, address: str) -> grpc.aio.Channel:
        """The channel to address, opened on first use."""
        channel = self._channels.get(address)
        if channel is None:
            channel = grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
            self._channels[address] = channel
        return channel

    def images(self, node: NodeState) -> images_pb2_grpc.ImagesStub:
        """An Images stub for node's agent."""
        return images_pb2_grpc.ImagesStub(self.channel(node.address))

    def agent(self, node: NodeState) -> system_pb2_grpc.AgentStub:
        """An Agent stub for node's agent."""
        return system_pb2_grpc.AgentStub(self.channel(node.address))

    async def call(self, node: NodeState, fn: Callable[[], Awaitable[T]]) -> T:
        """Await fn() (a call to node's agent), mapping its failure."""
        try:
            return await fn()
        except grpc.aio.AioRpcError as err:
            raise agent_error(node, err) from None

    async def stream(self, node: NodeState, call: grpc.aio.UnaryStreamCall) -> AsyncIterator[Any]:
        """Iterate a server-streaming call to node's agent, mapping its failure."""
        try:
            async for item in call:
                yield item
        except grpc.aio.AioRpcError as err:
            raise agent_error(node, err) from None
        finally:
            # Our caller may have gone away mid-stream: stop the agent's side too.
            call.cancel()

    async def close(self) -> None:
        """Close every channel."""
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
