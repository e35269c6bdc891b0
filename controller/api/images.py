"""The controller's Images service: every call is forwarded to agents.

The rules (docs/architecture.md, "Images go through the controller"):
List fans out to every Ready node (or to `node`) and stamps the node on
each image; Inspect and Save go to the first Ready node, by hostname, that
has the image; Tag, Remove and Prune go to every Ready node that has it
(NOT_FOUND only when none has); Import and Load stream to `node` or to the
first Ready node by hostname. Streams are passed on chunk by chunk.

Pull goes to `node` or the first Ready node by hostname, or with
`all_nodes` to every Ready node at once, each progress line stamped with
its node's name (a node that fails sends one line with `error`, and the
call ends with the first failure once the others are done); Push goes to
the first Ready node that has the image; Login and Search to the first
Ready node. Registry credentials pass through and are never kept.

With an EventLog, each node's successful pull, push, tag, untag, delete,
load, import and save is recorded as an image event (Docker's actions,
attribute "name"), stamped with the node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from controller.agents import AgentPool
from controller.api.builds import BuildForwarding
from controller.api.streams import chain, first_message
from controller.nodes import NodeRegistry, NodeState
from kran import errors, reference
from kran.api.v1 import images_pb2, images_pb2_grpc

if TYPE_CHECKING:
    from controller.events import EventLog

log = logging.getLogger(__name__)

T = TypeVar("T")

QUICK = 60.0      # seconds for calls that only read or change metadata
SLOW = 600.0      # seconds for calls that may delete many layers
ARCHIVE = "a header and the archive"


class ImagesForwarder(BuildForwarding, images_pb2_grpc.ImagesServicer):
    """kran.api.v1.Images for the whole cluster."""

    def __init__(self, nodes: NodeRegistry, agents: AgentPool,
                 events: EventLog | None = None) -> None:
        self.nodes = nodes
        self.agents = agents
        self.events = events

    async def _announce(self, action: str, actor_id: str, name: str,
                        nodes: Iterable[NodeState]) -> None:
        """Record an image event on each of nodes."""
        if self.events is None:
            return
        for node in nodes:
            await self.events.emit("image", action, actor_id, {"name": name},
                                   node_id=node.id, node_name=node.hostname)

    async def _targets(self, node: str) -> list[NodeState]:
        """The Ready nodes a call may go to: `node` alone, or all by hostname."""
        if node:
            target = await self.nodes.resolve(node)
            if not target.ready:
                raise errors.FailedPrecondition(f"node {target.hostname} ({target.id}) is down")
            return [target]
        ready = await self.nodes.ready()
        if not ready:
            raise errors.FailedPrecondition("no node is ready")
        return ready

    async def _each(self, targets: list[NodeState],
                    fn: Callable[[NodeState], Awaitable[T]]) -> list[T | errors.KranError]:
        """Run fn on every target concurrently; failures come back as errors."""
        async def one(node: NodeState) -> T | errors.KranError:
            try:
                return await self.agents.call(node, lambda: fn(node))
            except errors.KranError as exc:
                return exc
        return list(await asyncio.gather(*(one(node) for node in targets)))

    async def _where_found(self, targets: list[NodeState],
                           fn: Callable[[NodeState], Awaitable[T]]) -> list[tuple[NodeState, T]]:
        """Run fn on every target; keep the answers of nodes that have the image.

        Raises the first NOT_FOUND when no node has it, and any other error
        (an unreachable node, a refusal) as it is.
        """
        results = await self._each(targets, fn)
        found = [(node, r) for node, r in zip(targets, results)
                 if not isinstance(r, errors.KranError)]
        failures = [r for r in results if isinstance(r, errors.KranError)]
        refused = [r for r in failures if not isinstance(r, errors.NotFound)]
        if refused:
            raise refused[0]
        if not found:
            raise failures[0]
        return found

    async def List(self, request: images_pb2.ListImagesRequest,
                   context: grpc.aio.ServicerContext) -> images_pb2.ListImagesResponse:
        targets = await self._targets(request.node)
        forwarded = images_pb2.ListImagesRequest(all=request.all, filters=request.filters)
        results = await self._each(
            targets, lambda node: self.agents.images(node).List(forwarded, timeout=QUICK))
        reply = images_pb2.ListImagesResponse()
        for node, result in zip(targets, results):
            if isinstance(result, errors.KranError):
                raise result
            _stamp(node, result.images)
            reply.images.extend(result.images)
        return reply

    async def Inspect(self, request: images_pb2.InspectImageRequest,
                      context: grpc.aio.ServicerContext) -> images_pb2.ImageDetail:
        targets = await self._targets(request.node)
        forwarded = images_pb2.InspectImageRequest(reference=request.reference)
        results = await self._each(
            targets, lambda node: self.agents.images(node).Inspect(forwarded, timeout=QUICK))
        node, detail = _first_found(targets, results)
        _stamp(node, [detail.image])
        return detail

    async def Save(self, request: images_pb2.SaveImagesRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[images_pb2.DataChunk]:
        if not request.references:
            raise errors.InvalidArgument("no image given to save")
        node = await self._holder(await self._targets(request.node), list(request.references))
        log.info("saving images", extra={"node": node.id, "images": ",".join(request.references)})
        forwarded = images_pb2.SaveImagesRequest(references=request.references)
        async for chunk in self.agents.stream(node, self.agents.images(node).Save(forwarded)):
            yield chunk
        for ref in request.references:
            await self._announce("save", ref, _familiar(ref), [node])

    async def _holder(self, targets: list[NodeState], references: list[str]) -> NodeState:
        """The first target (by hostname) that has every reference."""
        async def has_all(node: NodeState) -> list[Any]:
            stub = self.agents.images(node)
            return list(await asyncio.gather(*(
                _outcome(self.agents.call(node, lambda ref=ref: stub.Inspect(
                    images_pb2.InspectImageRequest(reference=ref), timeout=QUICK)))
                for ref in references)))
        per_node = await asyncio.gather(*(has_all(node) for node in targets))
        for node, outcomes in zip(targets, per_node):
            if not any(isinstance(o, errors.KranError) for o in outcomes):
                return node
        for outcomes in per_node:
            for outcome in outcomes:
                if isinstance(outcome, errors.KranError) and not isinstance(outcome, errors.NotFound):
                    raise outcome
        for index, ref in enumerate(references):
            if all(isinstance(outcomes[index], errors.NotFound) for outcomes in per_node):
                raise per_node[0][index]
        raise errors.FailedPrecondition(
            f"no single node has all of {', '.join(references)}; save them separately")

    async def Tag(self, request: images_pb2.TagImageRequest,
                  context: grpc.aio.ServicerContext) -> images_pb2.TagImageResponse:
        forwarded = images_pb2.TagImageRequest(source=request.source, target=request.target)
        found = await self._where_found(
            await self._targets(request.node),
            lambda node: self.agents.images(node).Tag(forwarded, timeout=QUICK))
        log.info("tagged image", extra={"source": request.source, "target": request.target,
                                        "nodes": ",".join(node.id for node, _ in found)})
        await self._announce("tag", request.source, _familiar(request.target),
                             [node for node, _ in found])
        return images_pb2.TagImageResponse()

    async def Remove(self, request: images_pb2.RemoveImageRequest,
                     context: grpc.aio.ServicerContext) -> images_pb2.RemoveImageResponse:
        forwarded = images_pb2.RemoveImageRequest(
            reference=request.reference, force=request.force, no_prune=request.no_prune)
        found = await self._where_found(
            await self._targets(request.node),
            lambda node: self.agents.images(node).Remove(forwarded, timeout=SLOW))
        reply = images_pb2.RemoveImageResponse()
        _merge_removed(reply.removed, (item for _, r in found for item in r.removed))
        for node, result in found:
            await self._announce_removed(result.removed, node)
        return reply

    async def _announce_removed(self, removed: Iterable[images_pb2.RemovedImage],
                                node: NodeState) -> None:
        """untag and delete events for what a node removed (Docker names a deleted image by its id)."""
        for item in removed:
            if item.WhichOneof("what") == "untagged":
                await self._announce("untag", item.untagged, item.untagged, [node])
            elif item.WhichOneof("what") == "deleted":
                await self._announce("delete", item.deleted, item.deleted, [node])

    async def Prune(self, request: images_pb2.PruneImagesRequest,
                    context: grpc.aio.ServicerContext) -> images_pb2.PruneImagesResponse:
        targets = await self._targets(request.node)
        forwarded = images_pb2.PruneImagesRequest(all=request.all)
        results = await self._each(
            targets, lambda node: self.agents.images(node).Prune(forwarded, timeout=SLOW))
        reply = images_pb2.PruneImagesResponse()
        for node, result in zip(targets, results):
            if not isinstance(result, errors.KranError):
                await self._announce_removed(result.removed, node)
        for result in results:
            if isinstance(result, errors.KranError):
                raise result
            _merge_removed(reply.removed, result.removed)
            reply.space_reclaimed += result.space_reclaimed
        return reply

    async def Import(self, request_iterator: AsyncIterator[images_pb2.ImportImageRequest],
                     context: grpc.aio.ServicerContext) -> images_pb2.ImportImageResponse:
        first = await first_message(request_iterator, ARCHIVE)
        node = await self._stream_target(first.header.node if first.HasField("header") else "")
        log.info("importing image", extra={"node": node.id})
        reply = await self.agents.call(node, lambda: self.agents.images(node).Import(
            chain(first, request_iterator)))
        _stamp(node, [reply.image])
        named = first.header.reference if first.HasField("header") else ""
        await self._announce("import", reply.image.id,
                             _familiar(named) if named else reply.image.id, [node])
        return reply

    async def Load(self, request_iterator: AsyncIterator[images_pb2.LoadImagesRequest],
                   context: grpc.aio.ServicerContext) -> images_pb2.LoadImagesResponse:
        first = await first_message(request_iterator, ARCHIVE)
        node = await self._stream_target(first.header.node if first.HasField("header") else "")
        log.info("loading images", extra={"node": node.id})
        reply = await self.agents.call(node, lambda: self.agents.images(node).Load(
            chain(first, request_iterator)))
        _stamp(node, reply.images)
        for image in reply.images:
            await self._announce("load", image.id, image.repo_tags[0] if image.repo_tags else image.id,
                                 [node])
        return reply

    async def _stream_target(self, node: str) -> NodeState:
        return (await self._targets(node))[0]

    async def Pull(self, request: images_pb2.PullImageRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[images_pb2.Progress]:
        targets = await self._targets(request.node)
        if not request.all_nodes:
            targets = targets[:1]
        forwarded = images_pb2.PullImageRequest(reference=request.reference, platform=request.platform,
                                                all_tags=request.all_tags, auth=request.auth)
        log.info("pulling image", extra={"image": request.reference,
                                         "nodes": ",".join(node.id for node in targets)})
        lines = [self.agents.stream(node, self.agents.images(node).Pull(forwarded)) for node in targets]
        pulled, name = _familiar(request.reference), _repository(request.reference)
        if request.all_tags:
            pulled = name
        if len(targets) == 1:
            async for line in lines[0]:
                line.node_name = targets[0].hostname
                yield line
            await self._announce("pull", pulled, name, targets)
            return
        failed: set[str] = set()
        try:
            async for line in _merged(targets, lines):
                if line.error:
                    failed.add(line.node_name)
                yield line
        except errors.KranError:
            await self._announce("pull", pulled, name,
                                 [node for node in targets if node.hostname not in failed])
            raise
        await self._announce("pull", pulled, name, targets)

    async def Push(self, request: images_pb2.PushImageRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[images_pb2.Progress]:
        targets = await self._targets(request.node)
        if request.all_tags:
            node = await self._with_repository(targets, request.reference)
        else:
            try:
                node = await self._holder(targets, [request.reference])
            except errors.NotFound:
                raise errors.NotFound(
                    f"An image does not exist locally with the tag: {request.reference}") from None
        log.info("pushing image", extra={"node": node.id, "image": request.reference})
        forwarded = images_pb2.PushImageRequest(reference=request.reference, all_tags=request.all_tags,
                                                auth=request.auth)
        async for line in self.agents.stream(node, self.agents.images(node).Push(forwarded)):
            line.node_name = node.hostname
            yield line
        await self._announce("push", request.reference if request.all_tags
                             else _familiar(request.reference), _repository(request.reference), [node])

    async def _with_repository(self, targets: list[NodeState], name: str) -> NodeState:
        """The first target (by hostname) with some tag of the repository `name`."""
        forwarded = images_pb2.ListImagesRequest(filters={"reference": name})
        results = await self._each(targets, lambda node: self.agents.images(node).List(forwarded, timeout=QUICK))
        for node, result in zip(targets, results):
            if isinstance(result, errors.KranError):
                raise result
            if result.images:
                return node
        raise errors.NotFound(f"An image does not exist locally with the tag: {name}")

    async def Login(self, request: images_pb2.LoginRequest,
                    context: grpc.aio.ServicerContext) -> images_pb2.LoginResponse:
        node = (await self._targets(""))[0]
        return await self.agents.call(node, lambda: self.agents.images(node).Login(request, timeout=QUICK))

    async def Search(self, request: images_pb2.SearchImagesRequest,
                     context: grpc.aio.ServicerContext) -> images_pb2.SearchImagesResponse:
        node = (await self._targets(""))[0]
        return await self.agents.call(node, lambda: self.agents.images(node).Search(request, timeout=QUICK))


async def _merged(targets: list[NodeState],
                  streams: list[AsyncIterator[images_pb2.Progress]]) -> AsyncIterator[images_pb2.Progress]:
    """The lines of several nodes' streams as they come, stamped; the first failure raised at the end."""
    queue: asyncio.Queue[tuple[NodeState, images_pb2.Progress | errors.KranError | None]] = asyncio.Queue()

    async def drain(node: NodeState, stream: AsyncIterator[images_pb2.Progress]) -> None:
        try:
            async for line in stream:
                await queue.put((node, line))
            await queue.put((node, None))
        except errors.KranError as exc:
            await queue.put((node, exc))

    tasks = [asyncio.create_task(drain(node, stream)) for node, stream in zip(targets, streams)]
    failures: list[errors.KranError] = []
    try:
        for _ in range(len(tasks)):
            while True:
                node, item = await queue.get()
                if item is None:
                    break
                if isinstance(item, errors.KranError):
                    failures.append(item)
                    yield images_pb2.Progress(error=item.message, node_name=node.hostname)
                    break
                item.node_name = node.hostname
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if failures:
        raise failures[0]


def _familiar(ref: str) -> str:
    """A reference as Docker prints it ("busybox:latest"); an id or bad text as given."""
    if reference.is_full_id(ref):
        return ref
    try:
        return reference.parse(ref).familiar()
    except errors.InvalidArgument:
        return ref


def _repository(ref: str) -> str:
    """The repository of a reference as Docker prints it ("busybox"), or the text as given."""
    try:
        return reference.parse(ref, default_tag=False).familiar_name()
    except errors.InvalidArgument:
        return ref


def _stamp(node: NodeState, images: Iterable[images_pb2.Image]) -> None:
    """Mark images with the node that answered for them."""
    for image in images:
        image.node_id, image.node_name = node.id, node.hostname


async def _outcome(call: Awaitable[T]) -> T | errors.KranError:
    try:
        return await call
    except errors.KranError as exc:
        return exc


def _first_found(targets: list[NodeState],
                 results: list[T | errors.KranError]) -> tuple[NodeState, T]:
    """The first node (in order) whose answer is not an error.

    When none has it, an error other than NOT_FOUND (an unreachable node)
    wins, since that node might have had it.
    """
    for node, result in zip(targets, results):
        if not isinstance(result, errors.KranError):
            return node, result
    for result in results:
        if not isinstance(result, errors.NotFound):
            raise result
    raise results[0]


def _merge_removed(into: Any, items: Any) -> None:
    """Append RemovedImage entries, once each (several nodes may report one)."""
    seen = {item.SerializeToString(deterministic=True) for item in into}
    for item in items:
        key = item.SerializeToString(deterministic=True)
        if key not in seen:
            seen.add(key)
            into.append(item)

