"""The agent's side of a shim's socket (wire.py): requests and attach streams."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from agent.runtime import wire
from agent.runtime.state import SOCKET_FILE, ExitStatus
from kran import errors


class ShimGone(Exception):
    """The shim's socket is gone: the container has stopped (or the shim died)."""


async def connect(bundle: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to bundle/shim.sock, whatever the length of the bundle's path.

    A unix socket path holds 108 bytes; /proc/self/fd/N/shim.sock always fits.
    """
    try:
        dir_fd = os.open(bundle, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError as err:
        raise ShimGone(str(bundle)) from err
    try:
        return await asyncio.open_unix_connection(f"/proc/self/fd/{dir_fd}/{SOCKET_FILE}", limit=wire.MAX_FRAME)
    except (FileNotFoundError, ConnectionRefusedError) as err:
        raise ShimGone(str(bundle)) from err
    finally:
        os.close(dir_fd)


def raise_for(answer: dict) -> dict:
    """The answer, or the error kind its "error" stands for."""
    if "error" not in answer:
        return answer
    kind = answer.get("kind")
    if kind == "state":
        raise errors.FailedPrecondition(answer["error"])
    if kind == "invalid":
        raise errors.InvalidArgument(answer["error"])
    raise errors.Internal(answer["error"])


async def request(bundle: Path, message: dict, *, check: bool = True) -> dict:
    """One request to the shim and its answer; ShimGone if no shim listens."""
    reader, writer = await connect(bundle)
    try:
        writer.write(wire.encode(message))
        await writer.drain()
        line = await reader.readline()
    except ConnectionError as err:
        raise ShimGone(str(bundle)) from err
    finally:
        writer.close()
    if not line:
        raise ShimGone(str(bundle))
    answer = wire.decode(line)
    return raise_for(answer) if check else answer


class _Frames:
    """Frames both ways on a shim connection after its answer (wire.py)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer
        self.exit_state: dict | None = None

    async def read(self) -> tuple[int, bytes] | None:
        """The next chunk of output, (wire.STDOUT or wire.STDERR, bytes), or None when the stream has ended."""
        while True:
            try:
                header = await self._reader.readexactly(wire.HEADER.size)
                stream, length = wire.HEADER.unpack(header)
                data = await self._reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
            if stream == wire.EXIT:
                self.exit_state = json.loads(data)
                continue
            return stream, data

    async def _send(self, stream: int, data: bytes) -> None:
        if self._writer.is_closing():
            return  # closed, or the process has ended: there is no one to send to
        try:
            self._writer.write(wire.frame(stream, data))
            await self._writer.drain()
        except ConnectionError:
            pass  # the process has ended; read() says so

    async def write(self, data: bytes) -> None:
        """Send bytes to the process's stdin (ignored when it has none)."""
        if data:
            await self._send(wire.STDIN, data)

    async def close_stdin(self) -> None:
        """Close the process's stdin (its read sees end of file); not possible with a terminal."""
        await self._send(wire.STDIN, b"")

    async def resize(self, height: int, width: int) -> None:
        """Set the size of the process's terminal."""
        await self._send(wire.RESIZE, wire.SIZE.pack(height, width))

    async def close(self) -> None:
        """Detach; the process keeps running."""
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass


async def _open(bundle: Path, message: dict) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict]:
    """Connect, send one request and read its answer (not checked); ShimGone without one."""
    reader, writer = await connect(bundle)
    try:
        writer.write(wire.encode(message))
        await writer.drain()
        line = await reader.readline()
    except ConnectionError:
        line = b""
    if not line:
        writer.close()
        raise ShimGone(str(bundle))
    return reader, writer, wire.decode(line)


class Attach(_Frames):
    """A live attach to a container's stdio; several may be open at once.

    read() gives (stream, bytes) and None at the end, after which
    `exit_state` holds the final state (a dict as in state.json) if the
    container exited while attached.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tty: bool, stdin: bool):
        super().__init__(reader, writer)
        self.tty = tty
        self.has_stdin = stdin

    @classmethod
    async def open(cls, bundle: Path) -> "Attach":
        reader, writer, answer = await _open(bundle, {"op": "attach"})
        try:
            raise_for(answer)
        except errors.KranError:
            writer.close()
            raise
        return cls(reader, writer, bool(answer.get("tty")), bool(answer.get("stdin")))


class ExecSession(_Frames):
    """A process started in a running container by Runtime.exec.

    read() gives its output as for Attach (with a terminal, all of it as
    stdout); wait() reads to the end and gives its exit. A detached exec's
    session has only `pid`: read() ends at once.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pid: int, tty: bool):
        super().__init__(reader, writer)
        self.pid = pid
        self.tty = tty

    @classmethod
    async def open(cls, bundle: Path, request: dict) -> tuple["ExecSession | None", dict]:
        """Start the exec; (session, answer), session None when the answer is an error."""
        reader, writer, answer = await _open(bundle, request)
        if "error" in answer:
            writer.close()
            return None, answer
        return cls(reader, writer, int(answer["pid"]), bool(request["process"].get("terminal"))), answer

    @property
    def exit_code(self) -> int | None:
        """The process's exit code (128+signal if killed), once read() has returned None."""
        return None if self.exit_state is None else int(self.exit_state["exit_code"])

    async def wait(self) -> ExitStatus:
        """Read to the end (dropping output) and give the exit."""
        while await self.read() is not None:
            pass
        await self.close()
        if self.exit_code is None:
            return ExitStatus(255, error="the exec's process was lost (its container stopped or its shim died)")
        return ExitStatus(self.exit_code)
