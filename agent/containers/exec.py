"""Exec: run a process in a running container, its stdio over the client's stream.

The first request carries ExecOptions. The process joins the container's
namespaces and cgroup through its shim (Runtime.exec). Responses carry its
output (all of it as stdout with a terminal), then `exit`. A command that
cannot start ends the stream with `exit` holding Docker's message and code
(127 not found, 126 not executable), as `docker exec` prints and returns
them. A detached exec answers `started` with its pid at once. Stdin goes
through a DetachMatcher (ctrl-p,ctrl-q by default with a terminal): the
detach keys end the stream with `detached` and leave the process running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from agent.containers.detach import DEFAULT_DETACH_KEYS, parse_detach_keys, relay_stdin
from agent.runtime import wire
from agent.runtime.runtime import ExecError
from agent.runtime.shimclient import ExecSession
from agent.runtime.spec import ExecSpec
from kran import errors
from kran.api.v1 import containers_pb2

_DETACHED = "detached"


def exec_spec(options: containers_pb2.ExecOptions) -> ExecSpec:
    """The runtime's ExecSpec for the client's options."""
    size = (options.size.height, options.size.width) if options.HasField("size") else None
    return ExecSpec(args=list(options.cmd), env=list(options.env), user=options.user, cwd=options.working_dir,
                    tty=options.tty, stdin=options.stdin, size=size, detach=options.detach,
                    privileged=options.privileged)


def detach_keys(options: containers_pb2.ExecOptions) -> bytes:
    """The detach sequence: the client's, else Docker's default when a terminal takes stdin."""
    if options.detach_keys:
        return parse_detach_keys(options.detach_keys)
    return parse_detach_keys(DEFAULT_DETACH_KEYS) if options.tty else b""


async def _relay_stdin(session: ExecSession, options: containers_pb2.ExecOptions,
                       requests: AsyncIterator[containers_pb2.ExecRequest], events: asyncio.Queue) -> None:
    """Forward stdin and resizes; the client's end of stream closes the process's stdin."""
    if await relay_stdin(requests, detach_keys(options), options.stdin,
                         session.write, session.close_stdin, session.resize):
        await events.put(_DETACHED)
    elif options.stdin:
        await session.close_stdin()


async def _relay_output(session: ExecSession, events: asyncio.Queue) -> None:
    while (chunk := await session.read()) is not None:
        await events.put(chunk)
    await events.put(None)


class ExecOps:
    """The Exec RPC, as a mixin of ContainersService using self.manager."""

    manager: Any  # agent.containers.manager.ContainerManager: get(ref) and runtime

    async def Exec(self, request_iterator: AsyncIterator[containers_pb2.ExecRequest],
                   context: Any) -> AsyncIterator[containers_pb2.ExecResponse]:
        """Serve one Exec stream (see the module's docstring)."""
        requests = request_iterator.__aiter__()
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "options":
            raise errors.InvalidArgument("the first exec message must carry the exec options")
        options = first.options
        detach_keys(options)  # refuse bad keys before anything runs
        record = self.manager.get(options.container)
        try:
            session = await self.manager.runtime.exec(record.id, exec_spec(options))
        except ExecError as err:
            yield containers_pb2.ExecResponse(exit=containers_pb2.ExitStatus(code=err.exit_code, error=str(err)))
            return
        except (errors.FailedPrecondition, errors.NotFound):
            raise errors.FailedPrecondition(f"container {record.id} is not running") from None
        if options.detach:
            await session.close()
            yield containers_pb2.ExecResponse(started=session.pid)
            return
        events: asyncio.Queue = asyncio.Queue(maxsize=64)
        tasks = [asyncio.create_task(_relay_output(session, events)),
                 asyncio.create_task(_relay_stdin(session, options, requests, events))]
        try:
            while (event := await events.get()) is not None:
                if event == _DETACHED:
                    yield containers_pb2.ExecResponse(detached=True)
                    return
                stream, data = event
                if stream == wire.STDERR:
                    yield containers_pb2.ExecResponse(stderr=data)
                else:
                    yield containers_pb2.ExecResponse(stdout=data)
            status = await session.wait()
            yield containers_pb2.ExecResponse(exit=containers_pb2.ExitStatus(code=status.exit_code,
                                                                             error=status.error))
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionError, errors.KranError):
                    await task
            await session.close()
