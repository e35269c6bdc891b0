"""Reading a container's json-file log (agent/runtime/logfile.py writes it).

Each line is {"log": ..., "stream": "stdout"|"stderr", "time": RFC 3339}.
read() gives LogEntry messages: the last `tail` lines of the file (found by
reading it backwards, so a long log is not read whole), filtered by stream
and by since/until, and with follow, what is appended afterwards until the
container stops. Following checks the file every FOLLOW_INTERVAL; the shim
writes the log before it records the exit, so a last read after the stop
sees everything.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from agent.containers.records import timestamp
from kran import errors
from kran.api.v1 import containers_pb2

FOLLOW_INTERVAL = 0.1
BLOCK = 64 * 1024
READ_SIZE = 256 * 1024
_STREAMS = {"stdout": containers_pb2.STREAM_STDOUT, "stderr": containers_pb2.STREAM_STDERR}


def parse_tail(text: str) -> int | None:
    """Docker's tail: "all", "", a negative or unreadable number mean every line (None)."""
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def tail_offset(f, lines: int | None) -> int:
    """The offset in f (a binary file) where its last `lines` lines begin; None: 0."""
    end = f.seek(0, os.SEEK_END)
    if lines is None:
        return 0
    if lines == 0:
        return end
    pos, found = end, 0
    while pos > 0:
        size = min(BLOCK, pos)
        pos -= size
        f.seek(pos)
        block = f.read(size)
        stop = len(block)
        while True:
            cut = block.rfind(b"\n", 0, stop)
            if cut < 0:
                break
            stop = cut
            if pos + cut == end - 1:
                continue  # the newline ending the last line
            found += 1
            if found == lines:
                return pos + cut + 1
    return 0


def _nanos(stamp: Timestamp) -> int:
    return stamp.seconds * 1_000_000_000 + stamp.nanos


class _Filter:
    """Turns log lines into LogEntry messages, keeping the wanted streams and times."""

    def __init__(self, request: containers_pb2.LogsRequest) -> None:
        self.streams = {name for name, wanted in (("stdout", request.stdout), ("stderr", request.stderr)) if wanted}
        self.since = _nanos(request.since) if request.HasField("since") else 0
        self.until = _nanos(request.until) if request.HasField("until") else 0

    def entry(self, line: bytes) -> containers_pb2.LogEntry | None:
        try:
            record = json.loads(line)
            stream = record["stream"]
        except (ValueError, KeyError, TypeError):
            return None  # a damaged line is skipped, as Docker does
        if stream not in self.streams:
            return None
        stamp = timestamp(record.get("time", ""))
        nanos = _nanos(stamp)
        if nanos < self.since or (self.until and nanos > self.until):
            return None
        return containers_pb2.LogEntry(stream=_STREAMS[stream], data=str(record.get("log", "")).encode(),
                                       time=stamp)

    def past_until(self) -> bool:
        return bool(self.until) and time.time_ns() > self.until


async def read(path: Path, request: containers_pb2.LogsRequest,
               running: Callable[[], bool]) -> AsyncIterator[containers_pb2.LogEntry]:
    """The log's entries as the request asks; with follow, until running() turns false."""
    if not (request.stdout or request.stderr):
        raise errors.InvalidArgument("Bad parameters: you must choose at least one stream")
    selector = _Filter(request)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        if not request.follow:
            return
        while running() and not path.exists():
            await asyncio.sleep(FOLLOW_INTERVAL)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return
        request_tail = None
    else:
        request_tail = parse_tail(request.tail)
    with f:
        f.seek(tail_offset(f, request_tail))
        pending = b""
        while True:
            # Whether to go on is decided before reading, so the last read follows the stop.
            more = request.follow and running() and not selector.past_until()
            while chunk := f.read(READ_SIZE):
                pending += chunk
                lines = pending.split(b"\n")
                pending = lines.pop()
                for line in lines:
                    entry = selector.entry(line)
                    if entry is not None:
                        yield entry
                await asyncio.sleep(0)
            if not more:
                return
            await asyncio.sleep(FOLLOW_INTERVAL)
