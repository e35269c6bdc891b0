"""Attach: stdin in, stdout/stderr out, several clients at once, a terminal with its size."""

from __future__ import annotations

import json

import pytest

from agent.runtime import wire
from kran import errors
from tests.integration.runtime.conftest import run


async def _read_until(attach, wanted: bytes) -> bytes:
    seen = b""
    while wanted not in seen:
        chunk = await attach.read()
        assert chunk is not None, seen
        seen += chunk[1]
    return seen


def test_two_clients_see_output_and_share_stdin(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("cat", open_stdin=True)
        await runtime.create(container)
        first = await runtime.attach(container.id)
        second = await runtime.attach(container.id)
        await runtime.start(container.id)
        await first.write(b"hello\n")
        assert await _read_until(first, b"hello\n") == b"hello\n"
        assert await _read_until(second, b"hello\n") == b"hello\n"
        await second.close()
        await first.close_stdin()
        assert await first.read() is None
        assert first.exit_state["exit_code"] == 0
        await first.close()
        assert (await runtime.wait(container.id, timeout=10)).exit_code == 0
    run(scenario())


def test_streams_arrive_apart(runtime, spec) -> None:
    async def scenario() -> set:
        container = spec("sh", "-c", "read line; echo out; echo err >&2", open_stdin=True)
        await runtime.create(container)
        attach = await runtime.attach(container.id)
        await runtime.start(container.id)
        await attach.write(b"go\n")
        chunks = set()
        while (chunk := await attach.read()) is not None:
            chunks.add(chunk)
        await attach.close()
        return chunks
    assert run(scenario()) == {(wire.STDOUT, b"out\n"), (wire.STDERR, b"err\n")}


def test_terminal_with_size(runtime, spec) -> None:
    async def scenario() -> list[str]:
        container = spec("sh", "-c", "tty; stty size; echo $TERM", tty=True, open_stdin=True)
        await runtime.create(container)
        await runtime.resize(container.id, 30, 100)
        await runtime.start(container.id)
        await runtime.wait(container.id, timeout=10)
        lines = runtime.log_path(container.id).read_text().splitlines()
        return [json.loads(line)["log"] for line in lines]
    assert run(scenario()) == ["/dev/pts/0\r\n", "30 100\r\n", "xterm\r\n"]


def test_terminal_input_echoes(runtime, spec) -> None:
    async def scenario() -> bytes:
        container = spec("sh", tty=True, open_stdin=True)
        await runtime.create(container)
        attach = await runtime.attach(container.id)
        assert attach.tty
        await runtime.start(container.id)
        await attach.write(b"echo $((6*7))\n")
        seen = await _read_until(attach, b"42\r\n")
        await attach.write(b"exit 4\n")
        while await attach.read() is not None:
            pass
        await attach.close()
        assert (await runtime.wait(container.id, timeout=10)).exit_code == 4
        return seen
    assert b"42\r\n" in run(scenario())


def test_attach_to_stopped_container_is_refused(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("true")
        await runtime.create(container)
        await runtime.start(container.id)
        await runtime.wait(container.id, timeout=10)
        with pytest.raises(errors.FailedPrecondition):
            await runtime.attach(container.id)
    run(scenario())
