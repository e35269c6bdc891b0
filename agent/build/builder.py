"""The node's builder: a build from its options and context tar to its output stream, and its cleanup.

Each build works in its own directory under the builder's root
(`<state>/build/<random>/`): the context tar is spooled there and
unpacked into context/, each step gets a step-N/ directory (upper and
work dirs, the RUN container's log, temporary mounts). Whatever the end
(success, failure, the client going away), the directory goes, with
anything still mounted below it; a builder starting after a crash clears
what an earlier one left (the RUN containers of a crashed agent are
deleted by the container manager's recovery, as any unknown task is).

A build that cannot start (a bad Dockerfile, a missing target, a
context that is no tar) fails the call before any output; a build that
fails later sends a last message with the error (and the RUN's exit code)
and then fails the call with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from agent.build import stages
from agent.build.dockerfile import parse
from agent.build.steps import BuildRun, Options, Pull
from agent.distribution.auth import Credentials
from agent.images.content import decompressed
from agent.images.extract import extract_archive
from agent.images.store import ImageStore
from agent.linux import mounts_below, open_in_root, unmount
from agent.runtime.runtime import Runtime
from kran import errors, reference
from kran.api.v1 import images_pb2

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
MAX_DOCKERFILE = 4 << 20


def remove_tree(path: Path) -> None:
    """Unmount whatever is mounted below `path`, then delete it."""
    for point in mounts_below(path):
        with contextlib.suppress(OSError):
            unmount(point)
    shutil.rmtree(path, ignore_errors=True)


def build_options(message: images_pb2.BuildOptions) -> Options:
    """The options of a Build call, checked."""
    for tag in message.tags:
        try:
            reference.parse_tagged(tag)
        except errors.InvalidArgument as exc:
            raise errors.InvalidArgument(f'invalid tag "{tag}": {exc}') from None
    return Options(tags=list(message.tags), build_args=dict(message.build_args), target=message.target,
                   no_cache=message.no_cache, pull=message.pull, labels=dict(message.labels),
                   auth=[Credentials.from_message(a) for a in message.auth])


class Builder:
    """Runs builds on this node with its image store and runtime; work goes under `root`."""

    def __init__(self, store: ImageStore, runtime: Runtime, root: Path) -> None:
        self.store = store
        self.runtime = runtime
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.iterdir():
            remove_tree(leftover)

    async def build(self, message: images_pb2.BuildOptions, context: AsyncIterator[bytes],
                    pull: Pull) -> AsyncIterator[images_pb2.BuildProgress]:
        """Receive the context, then build, yielding docker build's output.

        The build's directory is gone before the last message goes out, so
        a client that has seen the end of its build finds nothing left.
        """
        options = build_options(message)
        workdir = Path(tempfile.mkdtemp(dir=self.root))
        run: BuildRun | None = None
        last: images_pb2.BuildProgress | None = None
        failure: errors.KranError | None = None
        try:
            await _receive(context, workdir / "context.tar")
            run = await asyncio.to_thread(self._prepare, message, options, workdir, pull)
            log.info("building image", extra={"tags": ",".join(options.tags), "workdir": str(workdir)})
            async with contextlib.aclosing(self._stream(run)) as stream:
                async for progress in stream:
                    if last is not None:
                        yield last
                    last = progress
        except errors.KranError as exc:
            if run is None:
                raise  # refused before it started: the call fails without output
            log.info("build failed", extra={"error": exc.message})
            failure = exc
        finally:
            await asyncio.to_thread(remove_tree, workdir)
        if last is not None:
            yield last
        if failure is not None:
            yield images_pb2.BuildProgress(error=failure.message, error_code=getattr(failure, "exit_code", 0))
            raise failure

    def _prepare(self, message: images_pb2.BuildOptions, options: Options, workdir: Path,
                 pull: Pull) -> BuildRun:
        context = workdir / "context"
        context.mkdir()
        tar = workdir / "context.tar"
        fd = os.open(context, _DIR_FLAGS)
        try:
            if tar.stat().st_size:
                with open(tar, "rb") as raw, decompressed(raw) as stream:
                    try:
                        extract_archive(stream, fd, "")
                    except errors.InvalidArgument as exc:
                        raise errors.InvalidArgument(f"the build context is not a usable tar archive: {exc}") from None
            tar.unlink()
            name = message.dockerfile or "Dockerfile"
            text = message.dockerfile_content.decode(errors="replace") if message.dockerfile_content \
                else _read_dockerfile(fd, name)
        finally:
            os.close(fd)
        plan = stages.plan(parse(text), name)
        meta = stages.meta_values(plan, options.build_args)
        target = plan.target(options.target)
        bases = stages.base_names(plan, meta)
        needed = stages.needed(plan, target, bases)
        return BuildRun(self.store, self.runtime, pull, plan, needed, bases, meta, options, workdir)

    async def _stream(self, run: BuildRun) -> AsyncIterator[images_pb2.BuildProgress]:
        """The build's output as it comes; then its error, raised, if it failed."""
        queue: asyncio.Queue[images_pb2.BuildProgress | None] = asyncio.Queue()
        task = asyncio.ensure_future(run.run(queue.put_nowait))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (message := await queue.get()) is not None:
                yield message
            log.info("built image", extra={"image": await task})
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def prune(self, all_entries: bool) -> tuple[list[str], int]:
        """Free the build cache (see ImageStore.prune_build_cache)."""
        return await asyncio.to_thread(self.store.prune_build_cache, all_entries)


async def _receive(chunks: AsyncIterator[bytes], target: Path) -> None:
    with open(target, "wb") as out:
        async for chunk in chunks:
            await asyncio.to_thread(out.write, chunk)


def _read_dockerfile(context_fd: int, name: str) -> str:
    for candidate in (name, name.lower()) if name == "Dockerfile" else (name,):
        try:
            fd = open_in_root(context_fd, candidate, os.O_RDONLY)
        except OSError:
            continue
        with open(fd, "rb") as f:
            data = f.read(MAX_DOCKERFILE + 1)
        if len(data) > MAX_DOCKERFILE:
            raise errors.InvalidArgument(f"the Dockerfile ({name}) is larger than {MAX_DOCKERFILE} bytes")
        return data.decode(errors="replace")
    raise errors.InvalidArgument(f"Cannot locate specified Dockerfile: {name}")
