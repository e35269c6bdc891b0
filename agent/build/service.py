"""Build and PruneBuildCache, the Images RPCs of agent.build (a mixin of the agent's ImagesService)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from agent.build.builder import Builder
from kran import errors
from kran.api.v1 import images_pb2

# A cache key is 64 hex digits; Docker shows build cache ids of 25 characters.
SHOWN_KEY = 25


class BuildService:
    """The build RPCs, using self.builder and self.distribution (set by ImagesService)."""

    builder: Builder | None
    distribution: Any  # agent.distribution.operations.Distribution

    def _builder(self) -> Builder:
        if self.builder is None:
            raise errors.FailedPrecondition("this images service has no builder (it serves a store alone)")
        return self.builder

    async def Build(self, request_iterator: AsyncIterator[images_pb2.BuildRequest],
                    context: grpc.aio.ServicerContext) -> AsyncIterator[images_pb2.BuildProgress]:
        builder = self._builder()
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "options":
            raise errors.InvalidArgument("the first message of Build must carry the build options")

        async def chunks() -> AsyncIterator[bytes]:
            async for message in requests:
                if message.WhichOneof("part") != "chunk":
                    raise errors.InvalidArgument("only the first message of Build carries options")
                yield message.chunk

        # Closed as soon as the client goes: the build stops and its directory goes with it.
        async with contextlib.aclosing(builder.build(first.options, chunks(), self.distribution.pull)) as stream:
            async for progress in stream:
                yield progress

    async def PruneBuildCache(self, request: images_pb2.PruneBuildCacheRequest,
                              context: grpc.aio.ServicerContext) -> images_pb2.PruneBuildCacheResponse:
        keys, freed = await self._builder().prune(request.all)
        return images_pb2.PruneBuildCacheResponse(caches_deleted=[k[:SHOWN_KEY] for k in keys],
                                                  space_reclaimed=freed)
