"""Progress lines: ids, throttling of byte counts, and the stream that carries them."""

from __future__ import annotations

import asyncio

import pytest

from agent.distribution.progress import DOWNLOADING, Reporter, mounted_from, short_id
from kran import errors


def drain(reporter: Reporter) -> list[tuple[str, str, int, int]]:
    out = []
    while not reporter.queue.empty():
        message = reporter.queue.get_nowait()
        if message is not None:
            out.append((message.id, message.status, message.current, message.total))
    return out


def test_short_ids_and_statuses() -> None:
    assert short_id("sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4") == "a3ed95caeb02"
    assert mounted_from("library/busybox") == "Mounted from library/busybox"


def test_byte_counts_are_throttled_per_line_but_ends_always_pass() -> None:
    now = [0.0]
    reporter = Reporter(clock=lambda: now[0])
    reporter.bytes("l1", DOWNLOADING, 0, 100)
    reporter.bytes("l1", DOWNLOADING, 10, 100)    # too soon: dropped
    reporter.bytes("l2", DOWNLOADING, 5, 50)      # another line has its own pace
    now[0] = 0.15
    reporter.bytes("l1", DOWNLOADING, 20, 100)
    reporter.bytes("l1", DOWNLOADING, 100, 100)   # the end, however soon
    reporter.status("Download complete", id="l1")
    reporter.status("Digest: sha256:x")
    assert drain(reporter) == [("l1", DOWNLOADING, 0, 100), ("l2", DOWNLOADING, 5, 50),
                               ("l1", DOWNLOADING, 20, 100), ("l1", DOWNLOADING, 100, 100),
                               ("l1", "Download complete", 0, 0), ("", "Digest: sha256:x", 0, 0)]


def test_stream_yields_lines_then_raises_the_error() -> None:
    async def scenario() -> list[str]:
        reporter = Reporter()

        async def work() -> None:
            reporter.status("one")
            await asyncio.sleep(0)
            reporter.status("two")
            raise errors.NotFound("gone")
        seen = []
        with pytest.raises(errors.NotFound, match="gone"):
            async for line in reporter.stream(work()):
                seen.append(line.status)
        return seen
    assert asyncio.run(scenario()) == ["one", "two"]


def test_leaving_the_stream_cancels_the_work() -> None:
    async def scenario() -> bool:
        reporter = Reporter()
        cancelled = asyncio.Event()

        async def work() -> None:
            reporter.status("started")
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise
        stream = reporter.stream(work())
        assert (await anext(stream)).status == "started"
        await stream.aclose()
        return cancelled.is_set()
    assert asyncio.run(scenario())
