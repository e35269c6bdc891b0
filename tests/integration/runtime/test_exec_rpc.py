"""The Exec RPC (agent/containers/exec.py) over a real grpc.aio server and real containers.

The servicer needs only get() and runtime from its manager, so a stand-in
manager over a real Runtime serves it here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
import pytest

from agent.containers.exec import ExecOps
from agent.runtime.runtime import Runtime
from kran import errors
from kran.api.v1 import containers_pb2, containers_pb2_grpc
from kran.server import start_server
from tests.integration.runtime.conftest import run
from tests.procs import free_port

Options = containers_pb2.ExecOptions
Request = containers_pb2.ExecRequest


@dataclass
class _Record:
    id: str


class _Manager:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def get(self, ref: str) -> _Record:
        if ref not in self.runtime.list():
            raise errors.NotFound(f"No such container: {ref}")
        return _Record(ref)


class _Service(ExecOps, containers_pb2_grpc.ContainersServicer):
    def __init__(self, manager: _Manager):
        self.manager = manager



async def _serve(runtime: Runtime, scenario) -> None:
    port = free_port()
    server = await start_server(f"127.0.0.1:{port}", [
        (containers_pb2_grpc.add_ContainersServicer_to_server, _Service(_Manager(runtime)), "kran.api.v1.Containers")])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await scenario(containers_pb2_grpc.ContainersStub(channel))
    finally:
        await server.stop(None)


async def _running(runtime: Runtime, container) -> None:
    await runtime.create(container)
    await runtime.start(container.id)


async def _collect(call) -> list:
    return [response async for response in call]


async def _one_shot(stub, options: Options) -> list:
    async def requests():
        yield Request(options=options)
    return await _collect(stub.Exec(requests()))


def test_exec_output_then_exit(runtime, spec) -> None:
    container = spec("sleep", "100")

    async def scenario(stub) -> None:
        responses = await _one_shot(stub, Options(container=container.id, cmd=["sh", "-c", "echo out; echo err >&2; exit 7"]))
        out = b"".join(r.stdout for r in responses if r.WhichOneof("part") == "stdout")
        err = b"".join(r.stderr for r in responses if r.WhichOneof("part") == "stderr")
        assert (out, err) == (b"out\n", b"err\n")
        assert responses[-1].WhichOneof("part") == "exit" and responses[-1].exit.code == 7

    run(_running(runtime, container))
    run(_serve(runtime, scenario))


def test_missing_command_ends_with_dockers_message(runtime, spec) -> None:
    container = spec("sleep", "100")

    async def scenario(stub) -> None:
        responses = await _one_shot(stub, Options(container=container.id, cmd=["nosuch"]))
        assert [r.WhichOneof("part") for r in responses] == ["exit"]
        assert responses[0].exit.code == 127
        assert responses[0].exit.error == ('OCI runtime exec failed: exec failed: unable to start container process: '
                                           'exec: "nosuch": executable file not found in $PATH: unknown')

    run(_running(runtime, container))
    run(_serve(runtime, scenario))


def test_not_running_and_unknown_are_refused(runtime, spec) -> None:
    container = spec("true")

    async def scenario(stub) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _one_shot(stub, Options(container=container.id, cmd=["true"]))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert caught.value.details() == f"container {container.id} is not running"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _one_shot(stub, Options(container="nosuch", cmd=["true"]))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _one_shot(stub, Options(container=container.id, cmd=["true"], detach_keys="ctrl-"))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    run(runtime.create(container))
    run(_serve(runtime, scenario))


def test_stdin_relay_and_close(runtime, spec) -> None:
    container = spec("sleep", "100")

    async def scenario(stub) -> None:
        async def requests():
            yield Request(options=Options(container=container.id, cmd=["cat"], stdin=True))
            yield Request(stdin=b"hello ")
            yield Request(stdin=b"world\n")
            yield Request(close_stdin=True)
        responses = await _collect(stub.Exec(requests()))
        assert b"".join(r.stdout for r in responses) == b"hello world\n"
        assert responses[-1].exit.code == 0

    run(_running(runtime, container))
    run(_serve(runtime, scenario))


def test_terminal_detach_keys_leave_the_process_running(runtime, spec) -> None:
    container = spec("sleep", "100")

    async def scenario(stub) -> None:
        inputs: asyncio.Queue = asyncio.Queue()

        async def requests():
            yield Request(options=Options(container=container.id, cmd=["sh"], tty=True, stdin=True,
                                          size=containers_pb2.TerminalSize(height=20, width=60)))
            while (item := await inputs.get()) is not None:
                yield item

        call = stub.Exec(requests())
        await inputs.put(Request(stdin=b"stty size; echo $$ > /tmp/shell\n"))
        seen = b""
        async for response in call:
            assert response.WhichOneof("part") == "stdout"  # a terminal merges the streams
            seen += response.stdout
            if b"20 60" in seen:
                break
        await inputs.put(Request(resize=containers_pb2.TerminalSize(height=33, width=99)))
        await inputs.put(Request(stdin=b"stty size\n"))
        async for response in call:
            seen += response.stdout
            if b"33 99" in seen:
                break
        await inputs.put(Request(stdin=b"\x10\x11"))
        rest = [r async for r in call]
        assert rest[-1].WhichOneof("part") == "detached"
        await inputs.put(None)
        # The shell is still there.
        check = await _one_shot(stub, Options(container=container.id,
                                              cmd=["sh", "-c", "kill -0 $(cat /tmp/shell) && echo alive"]))
        assert b"".join(r.stdout for r in check) == b"alive\n"

    run(_running(runtime, container))
    run(_serve(runtime, scenario))


def test_detached_exec_answers_started(runtime, spec) -> None:
    container = spec("sleep", "100")

    async def scenario(stub) -> None:
        responses = await _one_shot(stub, Options(container=container.id, cmd=["sleep", "30"], detach=True))
        assert [r.WhichOneof("part") for r in responses] == ["started"]
        pid = responses[0].started
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert f.read() == b"sleep\x0030\x00"

    run(_running(runtime, container))
    run(_serve(runtime, scenario))
