"""Attach and Exec calls: bytes and resizes in, output and the exit out.

A `StreamSession` is the SDK's socket-like object for both (docker-py's
attach socket): `send()` stdin, `close_stdin()`, `resize()`, and iterate it
for output. The gRPC call reads requests from a queue in its own thread, so
any thread may send while another reads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc

from kran.api.v1 import containers_pb2

if TYPE_CHECKING:
    from kran.client.api import APIClient

STDOUT = "stdout"
STDERR = "stderr"
_END = object()


class StreamSession:
    """One Attach or Exec call in progress.

    Iterating yields ("stdout" | "stderr", bytes) as output arrives; when it
    ends, `exit_code` (None if the stream ended without one), `error`,
    `oom_killed`, `detached` (the detach keys were read) and, for a detached
    exec, `pid` tell how. Errors are `kran.errors` kinds.
    """

    def __init__(self, api: APIClient, method: Callable[..., Any], first: Any,
                 request_type: type):
        self._api = api
        self._request_type = request_type
        self._queue: queue.Queue[Any] = queue.Queue()
        self._queue.put(first)
        self._closed = threading.Event()
        self.exit_code: int | None = None
        self.error = ""
        self.oom_killed = False
        self.detached = False
        self.pid: int | None = None
        self._call = method(self._requests(), wait_for_ready=False)

    def _requests(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            yield item

    def send(self, data: bytes) -> None:
        """Write data to the process's stdin."""
        if data:
            self._queue.put(self._request_type(stdin=bytes(data)))

    sendall = send

    def close_stdin(self) -> None:
        """Close the process's stdin (end of input); output keeps coming."""
        self._queue.put(self._request_type(close_stdin=True))

    def resize(self, height: int, width: int) -> None:
        """Set the terminal size of a container or exec started with a TTY."""
        self._queue.put(self._request_type(
            resize=containers_pb2.TerminalSize(height=height, width=width)))

    def close(self) -> None:
        """End the call (the process keeps running); iteration stops."""
        self._closed.set()
        self._queue.put(_END)
        self._call.cancel()

    def __enter__(self) -> StreamSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        try:
            for response in self._call:
                part = response.WhichOneof("part")
                if part in (STDOUT, STDERR):
                    yield part, getattr(response, part)
                elif part == "exit":
                    self.exit_code = response.exit.code
                    self.error = response.exit.error
                    self.oom_killed = response.exit.oom_killed
                elif part == "detached":
                    self.detached = True
                elif part == "started":
                    self.pid = response.started
        except grpc.RpcError as err:
            if self._closed.is_set() and err.code() == grpc.StatusCode.CANCELLED:
                return
            raise self._api.error(err) from err
        finally:
            # The call is over: let its request thread finish too.
            self._queue.put(_END)

    def read_all(self) -> tuple[bytes, bytes]:
        """Read to the end; returns (stdout, stderr)."""
        out: dict[str, list[bytes]] = {STDOUT: [], STDERR: []}
        for stream, data in self:
            out[stream].append(data)
        return b"".join(out[STDOUT]), b"".join(out[STDERR])
