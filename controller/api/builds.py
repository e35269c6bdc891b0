"""Build and PruneBuildCache for the whole cluster (a mixin of the controller's ImagesForwarder).

Build goes to the request's `node`, or to the first Ready node by
hostname, as Load does: the options message and then the context chunks
are relayed to that agent, and its output comes back stamped with the
node's name. PruneBuildCache goes to `node`, or to every Ready node.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from controller.agents import AgentPool
from controller.api.streams import first_message, relay
from controller.nodes import NodeState
from kran import errors
from kran.api.v1 import images_pb2

log = logging.getLogger(__name__)

PRUNE_TIMEOUT = 600.0


class BuildForwarding:
    """The build RPCs; needs ImagesForwarder's agents, _targets and _each."""

    agents: AgentPool
    _targets: Callable[[str], Awaitable[list[NodeState]]]
    _each: Callable[..., Awaitable[list[Any]]]

    async def Build(self, request_iterator: AsyncIterator[images_pb2.BuildRequest],
                    context: grpc.aio.ServicerContext) -> AsyncIterator[images_pb2.BuildProgress]:
        requests = aiter(request_iterator)
        first = await first_message(requests, "the build options and the context")
        if first.WhichOneof("part") != "options":
            raise errors.InvalidArgument("the first message of Build must carry the build options")
        node = (await self._targets(first.options.node))[0]
        log.info("building image", extra={"node": node.id, "tags": ",".join(first.options.tags)})
        forwarded = images_pb2.BuildRequest()
        forwarded.CopyFrom(first)
        forwarded.options.node = ""
        relayed = relay(node, lambda: self.agents.images(node).Build(), forwarded, requests)
        # Closed as soon as the client goes, which cancels the agent's call and so the build.
        async with contextlib.aclosing(relayed) as stream:
            async for progress in stream:
                progress.node_name = node.hostname
                yield progress

    async def PruneBuildCache(self, request: images_pb2.PruneBuildCacheRequest,
                              context: grpc.aio.ServicerContext) -> images_pb2.PruneBuildCacheResponse:
        targets = await self._targets(request.node)
        forwarded = images_pb2.PruneBuildCacheRequest(all=request.all)
        results = await self._each(
            targets, lambda node: self.agents.images(node).PruneBuildCache(forwarded, timeout=PRUNE_TIMEOUT))
        reply = images_pb2.PruneBuildCacheResponse()
        for result in results:
            if isinstance(result, errors.KranError):
                raise result
            reply.caches_deleted.extend(result.caches_deleted)
            reply.space_reclaimed += result.space_reclaimed
        return reply
