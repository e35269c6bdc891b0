"""Passing client streams on to agents.

For a bidirectional stream (attach, exec) both directions flow at once: a
task writes the client's messages to the agent and half-closes when the
client does, while the caller iterates the agent's answers. The relay
ends when the agent's side ends (the pump is then cancelled) and cancels
the agent's call when the client goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc

from controller.agents import agent_error
from controller.nodes import NodeState
from kran import errors

T = TypeVar("T")


async def first_message(requests: AsyncIterator[T], expected: str) -> T:
    """The first message of a client stream; InvalidArgument naming what was expected if empty."""
    # anext rather than `async for ... return`, which would leave the stream's
    # generator suspended and unusable for the rest of the messages.
    first = await anext(aiter(requests), None)
    if first is None:
        raise errors.InvalidArgument(f"empty request stream: expected {expected}")
    return first


async def chain(first: T, rest: AsyncIterator[T]) -> AsyncIterator[T]:
    """first, then the rest of a stream."""
    yield first
    async for message in aiter(rest):
        yield message


async def relay(node: NodeState, open_call: Callable[[], grpc.aio.StreamStreamCall],
                first: Any, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Forward first and then requests to a new call on node's agent; yield its answers."""
    call = open_call()

    async def pump() -> None:
        try:
            await call.write(first)
            async for message in aiter(requests):
                await call.write(message)
            await call.done_writing()
        except (asyncio.InvalidStateError, grpc.aio.AioRpcError):
            pass  # the agent's side has ended; the reader reports how

    pumping = asyncio.create_task(pump())
    try:
        while True:
            try:
                message = await call.read()
            except grpc.aio.AioRpcError as err:
                raise agent_error(node, err) from None
            if message is grpc.aio.EOF:
                return
            yield message
    finally:
        pumping.cancel()
        call.cancel()
