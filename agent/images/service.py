"""The agent's kran.api.v1.Images servicer over its ImageStore.

Blocking store work runs in worker threads (asyncio.to_thread). Uploads are
spooled into a file in the store's ingest area and removed afterwards;
Save writes its tarball there and streams it back in 1 MiB chunks. Pull,
Push, Login and Search go to the node's registry client
(agent.distribution) with the credentials that came with the call; Build
and PruneBuildCache to the node's builder (agent.build).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from agent.build.builder import Builder
from agent.build.service import BuildService
from agent.distribution.operations import Distribution
from agent.distribution.auth import Credentials
from agent.distribution.registries import RegistryOptions
from agent.images.store import ImageStore
from agent.images.views import ImageView, Removed
from kran import errors
from kran.api.v1 import images_pb2, images_pb2_grpc

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20


def image_message(view: ImageView) -> images_pb2.Image:
    """The Image summary message for a stored image."""
    created = Timestamp()
    created.FromDatetime(view.created)
    return images_pb2.Image(id=view.id, repo_tags=view.repo_tags, repo_digests=view.repo_digests,
                            created=created, size=view.size, labels=view.labels)


def detail_message(view: ImageView) -> images_pb2.ImageDetail:
    """The ImageDetail message: summary, config and manifest bytes as stored, layers base first."""
    return images_pb2.ImageDetail(
        image=image_message(view), config=view.config, manifest=view.manifest,
        manifest_digest=view.manifest_digest,
        layers=[images_pb2.Layer(diff_id=layer.diff_id, digest=layer.digest, media_type=layer.media_type,
                                 size=layer.size, chain_id=layer.chain_id) for layer in view.layers])


def _removed(records: list[Removed]) -> list[images_pb2.RemovedImage]:
    return [images_pb2.RemovedImage(**{kind: value}) for kind, value in records]


async def _spool(requests: AsyncIterator[Any], target: Path, header_field: str) -> Any:
    """Write the chunks of an upload stream to `target`; return its header (or None)."""
    header = None
    with open(target, "wb") as out:
        async for request in requests:
            part = request.WhichOneof("part")
            if part == header_field:
                if header is not None or out.tell() > 0:
                    raise errors.InvalidArgument("the header must be the first message, and only once")
                header = getattr(request, header_field)
            elif part == "chunk":
                await asyncio.to_thread(out.write, request.chunk)
    return header


class ImagesService(BuildService, images_pb2_grpc.ImagesServicer):
    """Serves the Images RPCs for this node's store; Build and PruneBuildCache need a `builder`."""

    def __init__(self, store: ImageStore, registry: RegistryOptions | None = None,
                 builder: Builder | None = None) -> None:
        self.store = store
        self.distribution = Distribution(store, registry or RegistryOptions())
        self.builder = builder

    async def List(self, request: images_pb2.ListImagesRequest,
                   context: grpc.aio.ServicerContext) -> images_pb2.ListImagesResponse:
        views = await asyncio.to_thread(self.store.list_images, dict(request.filters))
        return images_pb2.ListImagesResponse(images=[image_message(v) for v in views])

    async def Inspect(self, request: images_pb2.InspectImageRequest,
                      context: grpc.aio.ServicerContext) -> images_pb2.ImageDetail:
        view = await asyncio.to_thread(self.store.inspect, request.reference)
        return detail_message(view)

    async def Import(self, request_iterator: AsyncIterator[images_pb2.ImportImageRequest],
                     context: grpc.aio.ServicerContext) -> images_pb2.ImportImageResponse:
        with self.store.temp_dir() as work:
            upload = work / "rootfs.tar"
            header = await _spool(request_iterator, upload, "header") or images_pb2.ImportHeader()
            view = await asyncio.to_thread(
                self.store.import_rootfs, upload, header.reference, list(header.changes),
                header.message, header.platform)
        return images_pb2.ImportImageResponse(image=image_message(view))

    async def Load(self, request_iterator: AsyncIterator[images_pb2.LoadImagesRequest],
                   context: grpc.aio.ServicerContext) -> images_pb2.LoadImagesResponse:
        with self.store.temp_dir() as work:
            upload = work / "archive.tar"
            await _spool(request_iterator, upload, "header")
            views, messages = await asyncio.to_thread(self.store.load, upload)
        return images_pb2.LoadImagesResponse(images=[image_message(v) for v in views], messages=messages)

    async def Save(self, request: images_pb2.SaveImagesRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[images_pb2.DataChunk]:
        with self.store.temp_dir() as work:
            archive = work / "save.tar"
            with open(archive, "wb") as out:
                await asyncio.to_thread(self.store.save, list(request.references), out)
            with open(archive, "rb") as stream:
                while data := await asyncio.to_thread(stream.read, CHUNK_SIZE):
                    yield images_pb2.DataChunk(data=data)

    async def Tag(self, request: images_pb2.TagImageRequest,
                  context: grpc.aio.ServicerContext) -> images_pb2.TagImageResponse:
        await asyncio.to_thread(self.store.tag, request.source, request.target)
        return images_pb2.TagImageResponse()

    async def Remove(self, request: images_pb2.RemoveImageRequest,
                     context: grpc.aio.ServicerContext) -> images_pb2.RemoveImageResponse:
        records = await asyncio.to_thread(self.store.remove, request.reference, request.force)
        return images_pb2.RemoveImageResponse(removed=_removed(records))

    async def Prune(self, request: images_pb2.PruneImagesRequest,
                    context: grpc.aio.ServicerContext) -> images_pb2.PruneImagesResponse:
        records, freed = await asyncio.to_thread(self.store.prune, request.all)
        return images_pb2.PruneImagesResponse(removed=_removed(records), space_reclaimed=freed)

    async def Pull(self, request: images_pb2.PullImageRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[images_pb2.Progress]:
        log.info("pulling image", extra={"image": request.reference, "platform": request.platform})
        credentials = Credentials.from_message(request.auth)
        async for line in self.distribution.pull(request.reference, credentials, request.platform,
                                                 request.all_tags):
            yield line
        log.info("pulled image", extra={"image": request.reference})

    async def Push(self, request: images_pb2.PushImageRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[images_pb2.Progress]:
        log.info("pushing image", extra={"image": request.reference})
        credentials = Credentials.from_message(request.auth)
        async for line in self.distribution.push(request.reference, credentials, request.all_tags):
            yield line
        log.info("pushed image", extra={"image": request.reference})

    async def Login(self, request: images_pb2.LoginRequest,
                    context: grpc.aio.ServicerContext) -> images_pb2.LoginResponse:
        status = await self.distribution.login(request.auth.server_address, Credentials.from_message(request.auth))
        return images_pb2.LoginResponse(status=status)

    async def Search(self, request: images_pb2.SearchImagesRequest,
                     context: grpc.aio.ServicerContext) -> images_pb2.SearchImagesResponse:
        found = await self.distribution.search(request.term, request.limit, Credentials.from_message(request.auth))
        return images_pb2.SearchImagesResponse(results=[
            images_pb2.SearchResult(name=f.name, is_official=f.official) for f in found])
