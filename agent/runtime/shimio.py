"""What the shim relays: its socket's clients (Conn) and a process's stdio (Stdio). Stdlib only."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios
from collections.abc import Callable

from agent.runtime import wire
from agent.runtime.eventloop import Loop

CLIENT_BUFFER_LIMIT = 4 << 20  # a client this far behind is dropped
STDIN_BUFFER_LIMIT = 1 << 20   # beyond this a client's input waits for the process to read
DRAIN_TIMEOUT = 2.0            # how long output may still come after its process exited


class Conn:
    """One client of the shim's socket: a request line, then frames both ways (attach, exec)."""

    def __init__(self, loop: Loop, sock: socket.socket, on_request: Callable[["Conn", dict], None]):
        sock.setblocking(False)
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.closed = False
        self.on_frame: Callable[[int, bytes], None] | None = None
        self.closers: list[Callable[[], None]] = []  # called once, when the connection ends
        self._on_request = on_request
        self._requested = False
        self._closing = False
        self._linger = None
        self._paused = False
        self._in = bytearray()
        self._out = bytearray()
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        if self._closing:
            return  # the answer is complete; what the client still sends has no one to go to
        self._in += data
        self._process()

    def _process(self) -> None:
        while not self.closed and not self._paused and not self._closing:
            if self.on_frame is None:
                if self._requested:
                    return  # one request per connection; later bytes are its frames
                cut = self._in.find(b"\n")
                if cut < 0:
                    if len(self._in) > wire.MAX_FRAME:
                        self.close()
                    return
                line = bytes(self._in[:cut])
                del self._in[:cut + 1]
                self._requested = True
                try:
                    request = wire.decode(line)
                except ValueError as err:
                    self.answer({"error": f"bad request: {err}", "kind": "invalid"})
                    return
                self._on_request(self, request)
                continue
            if len(self._in) < wire.HEADER.size:
                return
            stream, length = wire.HEADER.unpack_from(self._in)
            if length > wire.MAX_FRAME:
                self.close()
                return
            end = wire.HEADER.size + length
            if len(self._in) < end:
                return
            data = bytes(self._in[wire.HEADER.size:end])
            del self._in[:end]
            self.on_frame(stream, data)

    def serve_frames(self, on_frame: Callable[[int, bytes], None]) -> None:
        """From now on, hand each frame the client sends to on_frame."""
        self.on_frame = on_frame
        self._process()

    def pause(self, paused: bool) -> None:
        """Stop (or resume) reading the client: back-pressure for stdin."""
        if paused == self._paused or self.closed:
            return
        self._paused = paused
        if paused:
            self.loop.remove_reader(self.fd)
        else:
            self.loop.add_reader(self.fd, self._readable)
            self._process()

    def send(self, data: bytes) -> None:
        """Queue bytes for the client; a client too far behind is dropped."""
        if self.closed:
            return
        if not self._out:
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.close()
                return
            data = data[sent:]
            if not data:
                return
            self.loop.add_writer(self.fd, self._writable)
        self._out += data
        if len(self._out) > CLIENT_BUFFER_LIMIT:
            self.close()

    def _writable(self) -> None:
        try:
            sent = self.sock.send(self._out)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        del self._out[:sent]
        if not self._out:
            self.loop.remove_writer(self.fd)
            if self._closing:
                self._half_close()

    def answer(self, message: dict, *, keep_open: bool = False) -> None:
        """Send one JSON answer; the connection ends after it unless keep_open."""
        self.send(wire.encode(message))
        if not keep_open:
            self.close_after_flush()

    def close_after_flush(self) -> None:
        """End the connection once what is queued has been sent.

        The shim shuts down its side and reads (and drops) what the client
        still sends until the client closes: closing a unix socket with
        unread input makes the client's next read fail with ECONNRESET,
        which could swallow the last frames (the exit) still queued for it.
        """
        if self._closing or self.closed:
            return
        self._closing = True
        self.pause(False)
        if not self._out:
            self._half_close()

    def _half_close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return
        self._linger = self.loop.call_later(DRAIN_TIMEOUT, self.close)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._linger is not None:
            self._linger.cancel()
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)
        self.sock.close()
        for closer in self.closers:
            closer()


def set_window_size(fd: int, height: int, width: int) -> None:
    """Set a terminal's size (TIOCSWINSZ on its master)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class Stdio:
    """A process's stdio held by the shim: output fds to read, an input fd to write.

    With a terminal the pty master is both the one output (as stdout) and
    the input, and closing stdin is not possible (as with Docker).
    """

    def __init__(self, loop: Loop, outputs: dict[int, int], stdin_fd: int | None, tty: bool,
                 on_output: Callable[[int, bytes], None], on_drained: Callable[[], None]):
        self.loop = loop
        self.outputs = outputs          # fd -> wire.STDOUT or wire.STDERR
        self.stdin_fd = stdin_fd
        self.tty = tty
        self.open_outputs = set(outputs)
        self.on_output = on_output
        self.on_drained = on_drained
        self.on_stdin_room: Callable[[], None] | None = None
        self._stdin_buffer = bytearray()
        self._stdin_closing = False

    def start(self) -> None:
        for fd, stream in self.outputs.items():
            os.set_blocking(fd, False)
            self.loop.add_reader(fd, lambda fd=fd, stream=stream: self._read(fd, stream))
        if self.stdin_fd is not None:
            os.set_blocking(self.stdin_fd, False)
        if not self.open_outputs:
            self.on_drained()

    @property
    def drained(self) -> bool:
        return not self.open_outputs

    @property
    def stdin_full(self) -> bool:
        return len(self._stdin_buffer) > STDIN_BUFFER_LIMIT

    def _read(self, fd: int, stream: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: the pty's last slave closed
        if data:
            self.on_output(stream, data)
            return
        self.loop.remove_reader(fd)
        self.open_outputs.discard(fd)
        if not self.open_outputs:
            self.on_drained()

    def write_stdin(self, data: bytes) -> None:
        """Queue bytes for the process's stdin; b"" closes it (pipes only)."""
        if self.stdin_fd is None or self._stdin_closing:
            return
        if not data:
            if not self.tty:
                self._stdin_closing = True
                if not self._stdin_buffer:
                    self._close_stdin()
            return
        self._stdin_buffer += data
        self._flush_stdin()

    def _flush_stdin(self) -> None:
        fd = self.stdin_fd
        if fd is None:
            return
        try:
            while self._stdin_buffer:
                written = os.write(fd, self._stdin_buffer)
                del self._stdin_buffer[:written]
        except BlockingIOError:
            self.loop.add_writer(fd, self._flush_stdin)
            return
        except OSError:
            self._stdin_buffer.clear()  # the reader is gone (EPIPE): drop the input, as a pipe would
        self.loop.remove_writer(fd)
        if self._stdin_closing:
            self._close_stdin()
        if self.on_stdin_room is not None:
            self.on_stdin_room()

    def _close_stdin(self) -> None:
        if self.stdin_fd is not None and not self.tty:
            self.loop.remove_writer(self.stdin_fd)
            os.close(self.stdin_fd)
            self.stdin_fd = None

    def resize(self, height: int, width: int) -> bool:
        """Set the terminal's size; False without a terminal."""
        if not self.tty or self.stdin_fd is None:
            return False
        set_window_size(self.stdin_fd, height, width)
        return True

    def close(self) -> None:
        """Stop relaying and close every fd."""
        self._close_stdin()
        for fd in set(self.outputs) | ({self.stdin_fd} if self.stdin_fd is not None else set()):
            self.loop.remove_reader(fd)
            self.loop.remove_writer(fd)
            os.close(fd)
        self.outputs = {}
        self.open_outputs.clear()
        self.stdin_fd = None
