"""Reading json-file logs: tail from the end, stream and time filters, following."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import pytest

from agent.containers import logs
from agent.runtime.logfile import LogWriter
from kran import errors
from kran.api.v1 import containers_pb2

STDOUT, STDERR = containers_pb2.STREAM_STDOUT, containers_pb2.STREAM_STDERR


def line(text: str, stream: str = "stdout", stamp: str = "2024-01-02T03:04:05.000000001Z") -> str:
    return json.dumps({"log": text, "stream": stream, "time": stamp}) + "\n"


def collect(path: Path, running=lambda: False, **fields) -> list[containers_pb2.LogEntry]:
    fields.setdefault("stdout", True)
    fields.setdefault("stderr", True)

    async def go() -> list[containers_pb2.LogEntry]:
        return [e async for e in logs.read(path, containers_pb2.LogsRequest(**fields), running)]
    return asyncio.run(go())


@pytest.mark.parametrize("text, lines, expected", [
    (b"a\nb\nc\n", 1, b"c\n"),
    (b"a\nb\nc\n", 2, b"b\nc\n"),
    (b"a\nb\nc\n", 3, b"a\nb\nc\n"),
    (b"a\nb\nc\n", 10, b"a\nb\nc\n"),
    (b"a\nb\nc\n", 0, b""),
    (b"a\nb\nc\n", None, b"a\nb\nc\n"),
    (b"", 5, b""),
    (b"only\n", 1, b"only\n"),
])
def test_tail_offset(text, lines, expected) -> None:
    f = io.BytesIO(text)
    f.seek(logs.tail_offset(f, lines))
    assert f.read() == expected


def test_tail_offset_across_blocks() -> None:
    text = b"".join(b"%06d" % i + b"x" * 1000 + b"\n" for i in range(300))
    f = io.BytesIO(text)
    f.seek(logs.tail_offset(f, 100))
    rest = f.read().splitlines()
    assert len(rest) == 100 and rest[0].startswith(b"000200")


def test_parse_tail() -> None:
    assert logs.parse_tail("all") is None and logs.parse_tail("") is None and logs.parse_tail("-1") is None
    assert logs.parse_tail("0") == 0 and logs.parse_tail("25") == 25


def test_streams_tail_and_times(tmp_path: Path) -> None:
    path = tmp_path / "container.log"
    path.write_text(line("one\n", stamp="2024-01-01T00:00:01Z") + line("err\n", "stderr", "2024-01-01T00:00:02Z")
                    + "not json\n" + line("two\n", stamp="2024-01-01T00:00:03.5Z"))
    entries = collect(path)
    assert [(e.stream, e.data) for e in entries] == [(STDOUT, b"one\n"), (STDERR, b"err\n"), (STDOUT, b"two\n")]
    assert entries[2].time.ToJsonString() == "2024-01-01T00:00:03.500Z"
    assert [e.data for e in collect(path, stderr=False)] == [b"one\n", b"two\n"]
    assert [e.data for e in collect(path, stdout=False)] == [b"err\n"]
    assert [e.data for e in collect(path, tail="3")] == [b"err\n", b"two\n"]  # the damaged line counts
    assert [e.data for e in collect(path, tail="0")] == []
    since = containers_pb2.LogsRequest().since
    since.FromJsonString("2024-01-01T00:00:02Z")
    assert [e.data for e in collect(path, since=since)] == [b"err\n", b"two\n"]
    assert [e.data for e in collect(path, until=since)] == [b"one\n", b"err\n"]
    with pytest.raises(errors.InvalidArgument, match="you must choose at least one stream"):
        collect(path, stdout=False, stderr=False)


def test_a_missing_log_is_empty(tmp_path: Path) -> None:
    assert collect(tmp_path / "none.log") == []
    assert collect(tmp_path / "none.log", follow=True) == []


def test_follow_reads_what_is_appended_until_the_container_stops(tmp_path: Path) -> None:
    path = tmp_path / "container.log"
    writer = LogWriter(str(path))
    writer.write("stdout", b"before\n")
    state = {"running": True}

    async def produce() -> None:
        for i in range(5):
            await asyncio.sleep(0.05)
            writer.write("stderr" if i % 2 else "stdout", f"line {i}\n".encode())
        writer.write("stdout", b"last words\n")
        writer.close()
        state["running"] = False

    async def go() -> tuple[list[bytes], float]:
        started = time.monotonic()
        request = containers_pb2.LogsRequest(stdout=True, stderr=True, follow=True, tail="all")
        producer = asyncio.create_task(produce())
        got = [e.data async for e in logs.read(path, request, lambda: state["running"])]
        await producer
        return got, time.monotonic() - started

    got, took = asyncio.run(go())
    assert got == [b"before\n", *(f"line {i}\n".encode() for i in range(5)), b"last words\n"]
    assert took < 2


def test_follow_with_tail_starts_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "container.log"
    path.write_text("".join(line(f"{i}\n") for i in range(1000)))
    state = {"running": True}

    async def go() -> list[bytes]:
        async def stop_soon() -> None:
            await asyncio.sleep(0.2)
            with open(path, "a") as f:
                f.write(line("new\n"))
            await asyncio.sleep(0.2)
            state["running"] = False
        stopper = asyncio.create_task(stop_soon())
        request = containers_pb2.LogsRequest(stdout=True, follow=True, tail="1")
        got = [e.data async for e in logs.read(path, request, lambda: state["running"])]
        await stopper
        return got

    assert asyncio.run(go()) == [b"999\n", b"new\n"]
