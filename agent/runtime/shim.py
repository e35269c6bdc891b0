"""The shim: one per container, parent of its init, keeper of its stdio and exit.

Double-forked by the forkserver (setsid, its own process group, child
subreaper), it outlives the agent. It creates the cgroup, forks the
container's init into a new pid namespace (container.py), moves it into the
cgroup before it runs anything, and reports "created" (or the failure) on
the agent's ready pipe. Then it serves bundle/shim.sock (wire.py) for
start, kill, state, wait, attach and resize, writes stdout/stderr to the
json-file log, and on exit records exit code, OOM kill and time in
state.json, removes the cgroup and exits. Stdlib only.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import socket
import struct
import termios
import traceback
from pathlib import Path
from typing import NoReturn

from agent import linux
from agent.runtime import container, wire
from agent.runtime.cgroups import open_cgroup
from agent.runtime.logfile import LogWriter
from agent.runtime.oci import ANNOTATION_LOG_PATH, ANNOTATION_OPEN_STDIN
from agent.runtime.state import (
    SOCKET_FILE, Status, TaskState, TransitionError, now_rfc3339, process_start_time, write_state,
)

_CLIENT_BUFFER_LIMIT = 4 << 20  # an attached client this far behind is dropped
_DRAIN_TIMEOUT = 2.0


class CreateFailed(Exception):
    """The container could not be created; exit_code as Docker reports it."""

    def __init__(self, message: str, exit_code: int = container.EXIT_SETUP_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


class Shim:
    """One container's shim: its init process, stdio, log and status."""

    def __init__(self, bundle: Path, config: dict):
        self.bundle = bundle
        self.config = config
        self.state = TaskState(id=bundle.name, shim_pid=os.getpid(),
                               shim_start_time=process_start_time(os.getpid()) or 0, created_at=now_rfc3339())
        parent, _, name = config["linux"]["cgroupsPath"].rpartition("/")
        self.cgroup = open_cgroup(parent, name)
        self.tty = bool(config["process"].get("terminal"))
        self.stdin_fd: int | None = None      # the container's stdin: pipe or pty master
        self.outputs: dict[int, str] = {}     # fd -> stream name
        self.init_sock: socket.socket | None = None
        self.clients: set[asyncio.StreamWriter] = set()
        self._stdin_buffer = bytearray()
        self._stdin_closing = False
        self._handlers: set[asyncio.Task] = set()
        self._exec_result: asyncio.Future[None] | None = None

    # -- creation (synchronous, before the event loop) --

    def create(self, ready_fd: int) -> None:
        """Cgroup, pid namespace, the init process, "go", and its "created".

        ready_fd (the agent's pipe) is closed in the init, so the agent sees
        end of file when the shim is gone, whatever the init does.
        """
        self.cgroup.create(self.config["linux"].get("resources", {}))
        annotations = self.config.get("annotations", {})
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        if self.tty:
            child_stdio = (devnull, devnull, devnull)  # the init replaces them with its pty
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            if annotations.get(ANNOTATION_OPEN_STDIN) == "true":
                in_r, self.stdin_fd = os.pipe()
            else:
                in_r = devnull
            child_stdio = (in_r, out_w, err_w)
            self.outputs = {out_r: "stdout", err_r: "stderr"}
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Only children move: the shim stays in the host's pid namespace.
        linux.unshare(linux.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            ours.close()
            os.close(ready_fd)
            for target, fd in enumerate(child_stdio):
                os.dup2(fd, target)
            container.main(str(self.bundle), self.config, theirs)
        theirs.close()
        for fd in set(child_stdio):
            os.close(fd)
        self.state.pid = pid
        self.init_sock = ours
        try:
            self.cgroup.add(pid)
        except OSError as err:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise CreateFailed(f"cannot join cgroup: {err}") from err
        container.send(ours, {"go": True})
        message, fds = container.receive(ours)
        if not message or "error" in message:
            os.waitpid(pid, 0)
            message = message or {"error": "container init exited during setup"}
            raise CreateFailed(message["error"], message.get("exit_code", container.EXIT_SETUP_FAILED))
        if self.tty:
            self.stdin_fd = fds[0]
            self.outputs = {fds[0]: "stdout"}
        write_state(self.bundle, self.state)

    def fail(self, err: CreateFailed) -> None:
        """Record a failed create and clean up what it made."""
        self.state.move(Status.STOPPED)
        self.state.exit_code = err.exit_code
        self.state.error = str(err)
        self.state.finished_at = now_rfc3339()
        write_state(self.bundle, self.state)
        if self.cgroup.exists():
            self.cgroup.remove()

    # -- serving (asyncio) --

    async def serve(self, listener: socket.socket) -> None:
        """Serve the socket until the container has exited and its exit is recorded."""
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = loop.create_future()
        self.finished = asyncio.Event()
        self.log = LogWriter(self.config["annotations"][ANNOTATION_LOG_PATH])
        self.outputs_done = asyncio.Event()
        for fd, stream in self.outputs.items():
            os.set_blocking(fd, False)
            loop.add_reader(fd, self._on_output, fd, stream)
        if self.stdin_fd is not None:
            os.set_blocking(self.stdin_fd, False)
        self._open_outputs = set(self.outputs)
        loop.add_signal_handler(signal.SIGCHLD, self._reap)
        server = await asyncio.start_unix_server(self._client, sock=listener)
        self._reap()
        code = await self.exited
        if self._exec_result is not None:
            await self._exec_result  # an exec failure's message belongs in the record
        try:
            await asyncio.wait_for(self.outputs_done.wait(), _DRAIN_TIMEOUT)
        except asyncio.TimeoutError:
            pass
        self._finish(code)
        server.close()
        os.unlink(SOCKET_FILE)
        for writer in list(self.clients):
            await self._close_client(writer)
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=_DRAIN_TIMEOUT)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.state.pid and not self.exited.done():
                code = os.waitstatus_to_exitcode(status)
                self.exited.set_result(code if code >= 0 else 128 - code)

    def _on_output(self, fd: int, stream: str) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: the pty's last slave closed
        if not data:
            asyncio.get_running_loop().remove_reader(fd)
            self._open_outputs.discard(fd)
            if not self._open_outputs:
                self.outputs_done.set()
            return
        self.log.write(stream, data)
        chunk = wire.frame(wire.STDOUT if stream == "stdout" else wire.STDERR, data)
        for writer in list(self.clients):
            if writer.transport.get_write_buffer_size() > _CLIENT_BUFFER_LIMIT:
                self.clients.discard(writer)
                writer.close()
            else:
                writer.write(chunk)

    def _finish(self, code: int) -> None:
        self.log.close()
        self.state.exit_code = code
        self.state.oom_killed = self.cgroup.oom_kills() > 0
        self.state.finished_at = now_rfc3339()
        self.state.move(Status.STOPPED)
        self._close_stdin_now()
        for fd in self.outputs:
            os.close(fd)
        self.cgroup.remove()
        write_state(self.bundle, self.state)
        self.finished.set()
        final = wire.frame(wire.EXIT, json.dumps(self.state.to_json()).encode())
        for writer in self.clients:
            writer.write(final)

    async def _close_client(self, writer: asyncio.StreamWriter) -> None:
        self.clients.discard(writer)
        try:
            writer.close()
            await writer.wait_closed()
        except OSError:
            pass

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        try:
            request = wire.decode(await reader.readline())
            op = request.get("op")
            if op == "attach":
                await self._attach(reader, writer)
                return
            handler = {"start": self._start, "kill": self._kill, "wait": self._wait,
                       "state": self._state, "resize": self._resize}.get(op)
            answer = await handler(request) if handler else {"error": f"unknown op {op!r}", "kind": "invalid"}
            writer.write(wire.encode(answer))
            await writer.drain()
        except (ValueError, KeyError, TypeError) as err:
            writer.write(wire.encode({"error": f"bad request: {err}", "kind": "invalid"}))
        except ConnectionError:
            pass
        finally:
            if writer not in self.clients:
                await self._close_client(writer)

    async def _start(self, _request: dict) -> dict:
        try:
            self.state.move(Status.RUNNING)
        except TransitionError as err:
            return {"error": str(err), "kind": "state"}
        loop = asyncio.get_running_loop()
        assert self.init_sock is not None
        self._exec_result = loop.create_future()
        container.send(self.init_sock, {"start": True})
        self.init_sock.setblocking(False)
        try:
            answer = await loop.sock_recv(self.init_sock, 65536)
        except ConnectionError:
            answer = b""
        self.init_sock.close()
        if answer:
            failure = json.loads(answer)
            self.state.error = failure["error"]
        self._exec_result.set_result(None)
        if answer:
            await self.finished.wait()
            return {"error": failure["error"], "kind": "exec", "exit_code": failure["exit_code"]}
        self.state.started_at = now_rfc3339()
        if not self.exited.done():
            write_state(self.bundle, self.state)
        return {"ok": True}

    async def _kill(self, request: dict) -> dict:
        if self.exited.done():
            return {"error": "container is not running", "kind": "state"}
        try:
            os.kill(self.state.pid, int(request["signal"]))
        except ProcessLookupError:
            return {"error": "container is not running", "kind": "state"}
        return {"ok": True}

    async def _wait(self, _request: dict) -> dict:
        await self.finished.wait()
        return {"ok": True, "state": self.state.to_json()}

    async def _state(self, _request: dict) -> dict:
        return {"ok": True, "state": self.state.to_json()}

    async def _resize(self, request: dict) -> dict:
        if not self.tty or self.stdin_fd is None:
            return {"error": "the container has no terminal", "kind": "state"}
        size = struct.pack("HHHH", int(request["height"]), int(request["width"]), 0, 0)
        fcntl.ioctl(self.stdin_fd, termios.TIOCSWINSZ, size)
        return {"ok": True}

    async def _attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.finished.is_set():
            writer.write(wire.encode({"error": "container is not running", "kind": "state"}))
            return
        writer.write(wire.encode({"ok": True, "tty": self.tty, "stdin": self.stdin_fd is not None}))
        self.clients.add(writer)
        try:
            while True:
                header = await reader.readexactly(wire.HEADER.size)
                stream, length = wire.HEADER.unpack(header)
                if length > wire.MAX_FRAME:
                    break
                data = await reader.readexactly(length)
                if stream == wire.STDIN:
                    self._write_stdin(data)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            await self._close_client(writer)

    def _write_stdin(self, data: bytes) -> None:
        """Queue bytes for the container's stdin; b"" closes it (pipes only)."""
        if self.stdin_fd is None or self._stdin_closing:
            return
        if not data:
            if not self.tty:
                self._stdin_closing = True
                if not self._stdin_buffer:
                    self._close_stdin_now()
            return
        self._stdin_buffer += data
        self._flush_stdin()

    def _flush_stdin(self) -> None:
        loop = asyncio.get_running_loop()
        fd = self.stdin_fd
        if fd is None:
            return
        try:
            while self._stdin_buffer:
                written = os.write(fd, self._stdin_buffer)
                del self._stdin_buffer[:written]
        except BlockingIOError:
            loop.add_writer(fd, self._flush_stdin)
            return
        except OSError:
            self._stdin_buffer.clear()  # the reader is gone (EPIPE): drop the input, as a pipe would
        loop.remove_writer(fd)
        if self._stdin_closing:
            self._close_stdin_now()

    def _close_stdin_now(self) -> None:
        if self.stdin_fd is not None and not self.tty:
            asyncio.get_running_loop().remove_writer(self.stdin_fd)
            os.close(self.stdin_fd)
            self.stdin_fd = None


def _report(ready_fd: int, message: dict) -> None:
    try:
        os.write(ready_fd, json.dumps(message).encode() + b"\n")
    except OSError:
        pass  # the agent gave up waiting; state.json still has the outcome
    os.close(ready_fd)


def run(bundle: str, ready_fd: int) -> NoReturn:
    """The shim's life, in the process the forkserver double-forked."""
    try:
        os.setpgid(0, 0)
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        linux.set_name("kran-shim")
        os.chdir(bundle)
        null = os.open(os.devnull, os.O_RDWR)
        log = os.open("shim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        with open("config.json") as f:
            config = json.load(f)
        shim = Shim(Path(bundle), config)
        try:
            shim.create(ready_fd)
        except (CreateFailed, OSError) as err:
            failure = err if isinstance(err, CreateFailed) else CreateFailed(f"cannot create container: {err}")
            shim.fail(failure)
            _report(ready_fd, {"error": str(failure), "exit_code": failure.exit_code})
            os._exit(0)
        # Listening before "created" is reported: the agent's next call is start.
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(SOCKET_FILE)
        listener.listen(64)
        _report(ready_fd, {"ok": True, "pid": shim.state.pid, "shim_pid": os.getpid()})
        asyncio.run(shim.serve(listener))
        os._exit(0)
    except BaseException:  # noqa: BLE001 - the shim has no one to raise to; shim.log keeps it
        traceback.print_exc()
        os._exit(1)
