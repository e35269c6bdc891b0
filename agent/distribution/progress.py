"""Progress of a pull or push as Docker reports it, one kran.api.v1.Progress message per line.

Pull, per layer (id = the first 12 hex digits of the layer's blob digest):
"Pulling fs layer", "Waiting", "Downloading" (current/total bytes),
"Verifying Checksum", "Download complete", "Extracting" (current/total),
"Pull complete"; or "Already exists". Around them, with the tag (or
digest) as id: "Pulling from library/busybox"; without id: "Digest:
sha256:..." and "Status: Downloaded newer image for busybox:latest" or
"Status: Image is up to date for busybox:latest".

Push, per layer (id = 12 hex digits of the DiffID): "Preparing", "Waiting",
"Pushing" (current/total), "Pushed", "Layer already exists", "Mounted from
<repo>"; first "The push refers to repository [<name>]", last
"<tag>: digest: sha256:... size: N".

Byte counts are sent at most every `INTERVAL` seconds per line (and
always at 0 and at the end), as dockerd throttles its progress stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from kran.api.v1 import images_pb2

INTERVAL = 0.1

PULLING_FS_LAYER = "Pulling fs layer"
WAITING = "Waiting"
DOWNLOADING = "Downloading"
VERIFYING = "Verifying Checksum"
DOWNLOAD_COMPLETE = "Download complete"
EXTRACTING = "Extracting"
PULL_COMPLETE = "Pull complete"
ALREADY_EXISTS = "Already exists"
PREPARING = "Preparing"
PUSHING = "Pushing"
PUSHED = "Pushed"
LAYER_EXISTS = "Layer already exists"


def short_id(digest: str) -> str:
    """The 12 hex digits Docker shows for a layer: "sha256:a3ed95ca..." -> "a3ed95caeb02"."""
    return digest.split(":", 1)[-1][:12]


def mounted_from(repository: str) -> str:
    """The status of a layer mounted from another repository of the same registry."""
    return f"Mounted from {repository}"


class Reporter:
    """Queues an operation's Progress messages for the call that streams them.

    `clock` is injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.queue: asyncio.Queue[images_pb2.Progress | None] = asyncio.Queue()
        self._clock = clock
        self._last: dict[str, float] = {}

    def status(self, status: str, id: str = "") -> None:
        """A line without a byte count."""
        self._last.pop(id, None)
        self.queue.put_nowait(images_pb2.Progress(id=id, status=status))

    def bytes(self, id: str, status: str, current: int, total: int) -> None:
        """A line with a byte count, dropped if the previous one for `id` was under INTERVAL ago."""
        now = self._clock()
        last = self._last.get(id)
        if last is not None and now - last < INTERVAL and current < total:
            return
        self._last[id] = now
        self.queue.put_nowait(images_pb2.Progress(id=id, status=status, current=current, total=total))

    def close(self) -> None:
        """No more lines."""
        self.queue.put_nowait(None)

    async def stream(self, work: Awaitable[None]) -> AsyncIterator[images_pb2.Progress]:
        """Run `work` (which reports here) and yield its lines as they come; then raise its error, if any.

        If the caller stops listening (the client went away), `work` is cancelled.
        """
        task = asyncio.ensure_future(work)
        task.add_done_callback(lambda _: self.close())
        try:
            while (message := await self.queue.get()) is not None:
                yield message
            await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
