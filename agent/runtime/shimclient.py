"""The agent's side of a shim's socket (wire.py): requests and attach streams."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from agent.runtime import wire
from agent.runtime.state import SOCKET_FILE
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


class Attach:
    """A live attach to a container's stdio; several may be open at once.

    read() gives (stream, bytes) with stream wire.STDOUT or wire.STDERR, and
    None at the end, after which `exit_state` holds the final state (a dict
    as in state.json) if the container exited while attached.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tty: bool, stdin: bool):
        self._reader = reader
        self._writer = writer
        self.tty = tty
        self.has_stdin = stdin
        self.exit_state: dict | None = None

    @classmethod
    async def open(cls, bundle: Path) -> "Attach":
        reader, writer = await connect(bundle)
        writer.write(wire.encode({"op": "attach"}))
        await writer.drain()
        line = await reader.readline()
        if not line:
            writer.close()
            raise ShimGone(str(bundle))
        try:
            answer = raise_for(wire.decode(line))
        except errors.KranError:
            writer.close()
            raise
        return cls(reader, writer, bool(answer.get("tty")), bool(answer.get("stdin")))

    async def read(self) -> tuple[int, bytes] | None:
        """The next chunk of output, or None when the stream has ended."""
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

    async def write(self, data: bytes) -> None:
        """Send bytes to the container's stdin (ignored when it has none)."""
        if data:
            self._writer.write(wire.frame(wire.STDIN, data))
            await self._writer.drain()

    async def close_stdin(self) -> None:
        """Close the container's stdin (its read sees end of file)."""
        self._writer.write(wire.frame(wire.STDIN, b""))
        await self._writer.drain()

    async def close(self) -> None:
        """Detach; the container keeps running."""
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass
