"""Top, Stats, Diff, Commit and the copies: the Containers RPCs that look into a container.

Thin wrappers over top.py, stats.py, diff.py, copy.py and ImageStore.commit;
blocking work runs in worker threads. A copy into or out of a stopped
container holds the record's lock while its temporary overlay mount
exists, so the container cannot start (mounting the same upper dir) meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import asdict
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO

import grpc

from agent.containers.cgroup import CgroupView, container_cgroup, frozen
from agent.containers.copy import container_root, copy_from, copy_to
from agent.containers.diff import changes, write_layer
from agent.containers.records import ContainerRecord
from agent.containers.stats import sample
from agent.containers.top import top
from agent.images.changes import apply_changes
from agent.images.service import image_message
from kran import errors, reference
from kran.api.v1 import containers_pb2, images_pb2

CHUNK_SIZE = 1 << 20
STATS_INTERVAL = 1.0


def commit_config(config: containers_pb2.ContainerConfig) -> dict[str, Any]:
    """The container's effective config in an image config's names, for ImageStore.commit."""
    return {"Cmd": list(config.cmd), "Entrypoint": list(config.entrypoint), "Env": list(config.env),
            "WorkingDir": config.working_dir, "User": config.user, "Labels": dict(config.labels),
            "StopSignal": config.stop_signal or None}


async def _stream_from(write: Callable[[BinaryIO], None]) -> AsyncIterator[bytes]:
    """The bytes `write` writes to a file object in a worker thread, as they come.

    A consumer that stops early closes the pipe: the writer then fails
    with a broken pipe and its thread ends.
    """
    read_fd, write_fd = os.pipe()

    def run() -> None:
        with open(write_fd, "wb") as out:
            write(out)

    task = asyncio.ensure_future(asyncio.to_thread(run))
    with open(read_fd, "rb", buffering=0) as reader:
        try:
            while chunk := await asyncio.to_thread(reader.read, CHUNK_SIZE):
                yield chunk
        finally:
            if not task.done():
                reader.close()
                await asyncio.gather(task, return_exceptions=True)
    await task


class ContainerOps:
    """Top, Stats, Diff, Commit, CopyFrom and CopyTo, as a mixin of ContainersService using self.manager."""

    manager: Any  # agent.containers.manager.ContainerManager, set by ContainersService

    def _cgroup(self, record: ContainerRecord) -> CgroupView:
        return container_cgroup(self.manager.runtime.cgroup_parent, record.id)

    def _running_pid(self, record: ContainerRecord) -> int:
        pid = self.manager.pid(record.id)
        if pid is None:
            raise errors.FailedPrecondition(f"container {record.id} is not running")
        return pid

    async def Top(self, request: containers_pb2.TopRequest,
                  context: grpc.aio.ServicerContext) -> containers_pb2.TopResponse:
        record = self.manager.get(request.container)
        self._running_pid(record)
        titles, rows = await asyncio.to_thread(lambda: top(self._cgroup(record).procs()))
        return containers_pb2.TopResponse(titles=titles,
                                          processes=[containers_pb2.TopProcess(fields=r) for r in rows])

    async def Stats(self, request: containers_pb2.StatsRequest,
                    context: grpc.aio.ServicerContext) -> AsyncIterator[containers_pb2.ContainerStats]:
        record = self.manager.get(request.container)
        view = self._cgroup(record)
        while True:
            pid = self.manager.pid(record.id)
            figures = await asyncio.to_thread(sample, view, pid)
            message = containers_pb2.ContainerStats(id=record.id, name=record.name, **asdict(figures))
            if pid is not None:
                message.read.GetCurrentTime()
            yield message
            if not request.stream or pid is None:
                return
            await asyncio.sleep(STATS_INTERVAL)

    async def Diff(self, request: containers_pb2.DiffRequest,
                   context: grpc.aio.ServicerContext) -> containers_pb2.DiffResponse:
        record = self.manager.get(request.container)
        found = await asyncio.to_thread(changes, record.upper, record.lowers)
        return containers_pb2.DiffResponse(changes=[containers_pb2.Change(path=p, kind=k) for p, k in found])

    async def Commit(self, request: containers_pb2.CommitRequest,
                     context: grpc.aio.ServicerContext) -> images_pb2.Image:
        record = self.manager.get(request.container)
        # Refuse bad input before writing the layer.
        apply_changes({}, list(request.changes))
        if request.reference:
            reference.parse_tagged(request.reference)
        view = await asyncio.to_thread(self._commit, record, request)
        return image_message(view)

    def _commit(self, record: ContainerRecord, request: containers_pb2.CommitRequest) -> Any:
        store = self.manager.store
        pause = request.pause and self.manager.pid(record.id) is not None
        with store.temp_dir() as work:
            layer = work / "layer.tar"
            with frozen(self._cgroup(record)) if pause else contextlib.nullcontext():
                with open(layer, "wb") as out:
                    write_layer(record.upper, out)
            return store.commit(record.image_id, layer, request.reference or None, request.message,
                                request.author, list(request.changes), commit_config(record.config), record.id)

    @contextlib.asynccontextmanager
    async def _root(self, record: ContainerRecord, writable: bool) -> AsyncIterator[int]:
        """The container's root as a directory fd (see agent.containers.copy.container_root)."""
        async with contextlib.AsyncExitStack() as stack:
            pid = self.manager.pid(record.id)
            if pid is None:
                await stack.enter_async_context(record.lock)
                pid = self.manager.pid(record.id)  # it may have started while we waited
            root = container_root(pid, record.lowers, record.upper, record.work, record.dir, writable)
            root_fd = await asyncio.to_thread(root.__enter__)
            stack.push_async_callback(asyncio.to_thread, root.__exit__, None, None, None)
            yield root_fd

    async def CopyFrom(self, request: containers_pb2.CopyFromRequest,
                       context: grpc.aio.ServicerContext) -> AsyncIterator[images_pb2.DataChunk]:
        record = self.manager.get(request.container)
        async with self._root(record, writable=False) as root_fd:
            async for chunk in _stream_from(lambda out: copy_from(root_fd, request.path, record.name, out)):
                yield images_pb2.DataChunk(data=chunk)

    async def CopyTo(self, request_iterator: AsyncIterator[containers_pb2.CopyToRequest],
                     context: grpc.aio.ServicerContext) -> containers_pb2.CopyToResponse:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "header":
            raise errors.InvalidArgument("the first message of CopyTo must carry the header")
        header = first.header
        record = self.manager.get(header.container)
        async with self._root(record, writable=True) as root_fd:
            read_fd, write_fd = os.pipe()

            def unpack() -> None:
                with open(read_fd, "rb") as stream:
                    copy_to(root_fd, header.path, stream, record.name, header.no_overwrite_dir_non_dir)

            task = asyncio.ensure_future(asyncio.to_thread(unpack))
            try:
                with open(write_fd, "wb", buffering=0) as pipe:
                    async for message in requests:
                        if message.WhichOneof("part") != "chunk":
                            raise errors.InvalidArgument("only the first message of CopyTo carries a header")
                        try:
                            await asyncio.to_thread(_write_all, pipe.fileno(), message.chunk)
                        except BrokenPipeError:
                            break  # the unpacking ended: the archive's end, or an error it reports below
            except BaseException:
                await asyncio.gather(task, return_exceptions=True)
                raise
            await task
        return containers_pb2.CopyToResponse()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
