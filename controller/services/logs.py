"""A service's logs: its task containers' logs, read from their agents and merged.

Without follow, every task's log is read at once and the lines are merged
in time order; with follow, lines are passed on as each agent sends them,
until every task's container has stopped (or the client goes away). Tasks
whose node is Down are left out, as Swarm leaves out unreachable nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from controller.agents import AgentPool
from controller.nodes import NodeState
from controller.services.records import Task
from kran import errors
from kran.api.v1 import containers_pb2, containers_pb2_grpc, services_pb2

_QUEUE = 1024     # lines buffered between the agents and a following client
_DONE = object()


def _request(task: Task, request: services_pb2.ServiceLogsRequest) -> containers_pb2.LogsRequest:
    forwarded = containers_pb2.LogsRequest(
        container=task.container_id, follow=request.follow, tail=request.tail or "all",
        stdout=request.stdout, stderr=request.stderr)
    if request.HasField("since"):
        forwarded.since.CopyFrom(request.since)
    return forwarded


async def _read(agents: AgentPool, node: NodeState, task: Task,
                request: services_pb2.ServiceLogsRequest) -> AsyncIterator[services_pb2.ServiceLogEntry]:
    stub = containers_pb2_grpc.ContainersStub(agents.channel(node.address))
    try:
        async for entry in agents.stream(node, stub.Logs(_request(task, request))):
            yield services_pb2.ServiceLogEntry(task_id=task.id, slot=task.slot, node_id=node.id,
                                               node_name=node.hostname, entry=entry)
    except errors.NotFound:
        return  # the task's container was removed meanwhile: it has no more to say


async def merged(agents: AgentPool, sources: Sequence[tuple[Task, NodeState]],
                 request: services_pb2.ServiceLogsRequest
                 ) -> AsyncIterator[services_pb2.ServiceLogEntry]:
    """The log lines of every (task, node) in sources, merged."""
    if not request.follow:
        lines = []
        reads = await asyncio.gather(*(_collect(_read(agents, node, task, request))
                                       for task, node in sources))
        for read in reads:
            lines.extend(read)
        lines.sort(key=lambda line: (line.entry.time.seconds, line.entry.time.nanos))
        for line in lines:
            yield line
        return
    queue: asyncio.Queue[object] = asyncio.Queue(_QUEUE)

    async def pump(task: Task, node: NodeState) -> None:
        try:
            async for line in _read(agents, node, task, request):
                await queue.put(line)
        finally:
            await queue.put(_DONE)

    pumps = [asyncio.create_task(pump(task, node)) for task, node in sources]
    try:
        remaining = len(pumps)
        while remaining:
            item = await queue.get()
            if item is _DONE:
                remaining -= 1
                continue
            yield item  # type: ignore[misc]
        for finished in pumps:
            finished.result()  # a pump that failed reports why
    finally:
        for running in pumps:
            running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pumps, return_exceptions=True)


async def _collect(lines: AsyncIterator[services_pb2.ServiceLogEntry]
                   ) -> list[services_pb2.ServiceLogEntry]:
    return [line async for line in lines]
