"""Attach: a client's stream to a container's stdio, over the shim's attach socket.

The first request carries AttachOptions. With `logs` the log is replayed
first; with `start` the stream attaches to the created task before it is
started, so no output is lost (run, start -a). Stdin goes through a
DetachMatcher: the detach keys end the stream with `detached` and leave the
container running. Otherwise the stream ends with the container's exit, as
the manager recorded it. Several clients may attach at once: each has its
own connection to the shim.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from agent.containers import logs
from agent.containers.detach import parse_detach_keys, relay_stdin
from agent.containers.manager import ContainerManager
from agent.containers.records import ContainerRecord
from agent.runtime import wire
from agent.runtime.shimclient import Attach
from kran import errors
from kran.api.v1 import containers_pb2

EXIT_WAIT = 10.0  # how long to wait for the manager to record an exit the shim announced


async def _options(requests: AsyncIterator[containers_pb2.AttachRequest]) -> containers_pb2.AttachOptions:
    first = await anext(requests, None)
    if first is None or first.WhichOneof("part") != "options":
        raise errors.InvalidArgument("the first attach message must carry the attach options")
    return first.options


async def _replay(record: ContainerRecord,
                  options: containers_pb2.AttachOptions) -> AsyncIterator[containers_pb2.AttachResponse]:
    request = containers_pb2.LogsRequest(stdout=options.stdout, stderr=options.stderr, tail="all")
    if not (options.stdout or options.stderr):
        return
    async for entry in logs.read(record.log_path, request, running=lambda: False):
        if entry.stream == containers_pb2.STREAM_STDERR:
            yield containers_pb2.AttachResponse(stderr=entry.data)
        else:
            yield containers_pb2.AttachResponse(stdout=entry.data)


async def _relay_stdin(manager: ContainerManager, record: ContainerRecord, session: Attach,
                       options: containers_pb2.AttachOptions,
                       requests: AsyncIterator[containers_pb2.AttachRequest]) -> bool:
    """Forward stdin and resizes until the client ends its stream; True when it detached."""
    async def close_stdin() -> None:
        if record.config.stdin_once:  # else the next attacher may still write
            await session.close_stdin()

    async def resize(height: int, width: int) -> None:
        with contextlib.suppress(errors.FailedPrecondition):
            await manager.runtime.resize(record.id, height, width)

    return await relay_stdin(requests, parse_detach_keys(options.detach_keys), options.stdin,
                             session.write, close_stdin, resize)


async def attach(manager: ContainerManager, requests: AsyncIterator[containers_pb2.AttachRequest]
                 ) -> AsyncIterator[containers_pb2.AttachResponse]:
    """Serve one Attach stream (see the module's docstring)."""
    options = await _options(requests)
    parse_detach_keys(options.detach_keys)  # refuse bad keys before anything happens
    record = manager.get(options.container)
    if options.logs:
        async for response in _replay(record, options):
            yield response
    exits = record.exits
    session: Attach | None = None
    if options.start:
        async def open_session() -> None:
            nonlocal session
            session = await manager.runtime.attach(record.id)
        try:
            await manager.start(record.id, before_start=open_session)
        except BaseException:
            if session is not None:
                await session.close()
            raise
    if session is None:
        if record.state.status != "running":
            if options.logs and not options.start:
                return
            raise errors.FailedPrecondition("You cannot attach to a stopped container, start it first")
        session = await manager.runtime.attach(record.id)
    stdin = asyncio.create_task(_relay_stdin(manager, record, session, options, requests))
    output = asyncio.create_task(session.read())
    try:
        while True:
            waiting = {output, stdin} if stdin is not None else {output}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if stdin in done:
                detached, stdin = stdin.result(), None
                if detached:
                    yield containers_pb2.AttachResponse(detached=True)
                    return
            if output in done:
                chunk = output.result()
                if chunk is None:
                    break
                stream, data = chunk
                if stream == wire.STDERR and options.stderr:
                    yield containers_pb2.AttachResponse(stderr=data)
                elif stream == wire.STDOUT and options.stdout:
                    yield containers_pb2.AttachResponse(stdout=data)
                output = asyncio.create_task(session.read())
        exited = lambda: record.exits > exits or record.removed  # noqa: E731
        announced = session.exit_state is not None
        if not await manager.until(exited, record, EXIT_WAIT if announced else None) and announced:
            final = session.exit_state or {}
            yield containers_pb2.AttachResponse(exit=containers_pb2.ExitStatus(
                code=int(final.get("exit_code") or 0), error=final.get("error", ""),
                oom_killed=bool(final.get("oom_killed"))))
            return
        state = record.state
        yield containers_pb2.AttachResponse(exit=containers_pb2.ExitStatus(
            code=state.exit_code, error=state.error, oom_killed=state.oom_killed))
    finally:
        for task in (stdin, output):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (stdin, output) if t is not None), return_exceptions=True)
        await session.close()
