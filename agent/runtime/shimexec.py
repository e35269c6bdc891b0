"""An exec, as the shim runs it: a process that enters the running container.

The shim forks a helper (enter.py) that joins the container's cgroup and
namespaces, then forks the exec's process inside the pid namespace and exits;
the process, orphaned, comes back to the shim (its subreaper), which reaps
it. The helper sends the process's host pid (and a pty master) on a
socketpair; the process sends an error if it cannot exec, and the socket's
end of file (close-on-exec) says that it did. Only then does the shim
answer the request: {"ok", "pid"} followed by frames as for attach (stdout,
stderr, then EXIT {"exit_code"}), or {"error", "kind": "exec", "exit_code"}.
A detached exec is answered and its connection closed at once; its output
is read and dropped. Stdlib only.
"""

from __future__ import annotations

import json
import os
import socket
from typing import TYPE_CHECKING

from agent.runtime import container, enter, wire
from agent.runtime.shimio import DRAIN_TIMEOUT, Conn, Stdio

if TYPE_CHECKING:
    from agent.runtime.shim import Shim


class ShimExec:
    """One exec's process, its stdio and its client."""

    def __init__(self, shim: "Shim", conn: Conn, request: dict):
        self.shim = shim
        self.conn: Conn | None = conn
        self.request = request
        self.process = request["process"]
        self.tty = bool(self.process.get("terminal"))
        self.detach = bool(request.get("detach"))
        self.wants_stdin = bool(request.get("stdin")) and not self.detach
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.done = False
        self.stdio: Stdio | None = None
        self._setup: socket.socket | None = None
        self._failure: dict | None = None
        self._outputs: dict[int, int] = {}
        self._stdin_fd: int | None = None
        self._drain_timer = None

    def spawn(self) -> None:
        """Fork the helper; the answer waits for the outcome on the setup socket."""
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        child_stdio = [devnull, devnull, devnull]
        if not self.tty and not self.detach:
            out_r, child_stdio[1] = os.pipe()
            err_r, child_stdio[2] = os.pipe()
            self._outputs = {out_r: wire.STDOUT, err_r: wire.STDERR}
            if self.wants_stdin:
                child_stdio[0], self._stdin_fd = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            ours.close()
            for target, fd in enumerate(child_stdio):
                os.dup2(fd, target)
            enter.main(self.shim.state.pid, self.shim.cgroup(), self.request, theirs)
        theirs.close()
        for fd in set(child_stdio):
            os.close(fd)
        self.shim.helpers.add(pid)
        ours.setblocking(False)
        self._setup = ours
        self.shim.loop.add_reader(ours.fileno(), self._setup_message)

    def _setup_message(self) -> None:
        try:
            message, fds = container.receive(self._setup)
        except BlockingIOError:
            return
        except OSError:
            message, fds = None, []
        if message is None:
            self.shim.loop.remove_reader(self._setup.fileno())
            self._setup.close()
            self._setup = None
            self._started()
        elif "pid" in message:
            self.pid = int(message["pid"])
            if fds:
                self._outputs = {fds[0]: wire.STDOUT}
                self._stdin_fd = fds[0]
            if self.pid in self.shim.unclaimed_exits:
                self.exit_code = self.shim.unclaimed_exits.pop(self.pid)
        else:
            for fd in fds:
                os.close(fd)
            self._failure = message

    def _started(self) -> None:
        conn = self.conn
        if self._failure is not None or self.pid is None:
            failure = self._failure or {"error": "the exec's process ended during its setup",
                                        "exit_code": container.EXIT_SETUP_FAILED}
            if conn is not None:
                conn.answer({"error": failure["error"], "kind": "exec", "exit_code": failure["exit_code"]})
            self.conn = None
            self._close_fds()
            self._check_done()
            return
        if conn is not None:
            conn.answer({"ok": True, "pid": self.pid}, keep_open=not self.detach)
            if self.detach:
                self.conn = None
            else:
                conn.closers.append(self._client_gone)
                conn.serve_frames(self._frame)
        self.stdio = Stdio(self.shim.loop, self._outputs, self._stdin_fd, self.tty, self._output, self._check_done)
        self.stdio.on_stdin_room = self._stdin_room
        self.stdio.start()
        self._check_done()

    def _close_fds(self) -> None:
        for fd in set(self._outputs) | ({self._stdin_fd} if self._stdin_fd is not None else set()):
            os.close(fd)
        self._outputs = {}
        self._stdin_fd = None

    def _output(self, stream: int, data: bytes) -> None:
        if self.conn is not None:
            self.conn.send(wire.frame(stream, data))

    def _frame(self, stream: int, data: bytes) -> None:
        if stream == wire.STDIN and self.wants_stdin:
            self.stdio.write_stdin(data)
            if self.stdio.stdin_full and self.conn is not None:
                self.conn.pause(True)
        elif stream == wire.RESIZE:
            self.stdio.resize(*wire.SIZE.unpack(data))

    def _stdin_room(self) -> None:
        if self.conn is not None and not self.stdio.stdin_full:
            self.conn.pause(False)

    def _client_gone(self) -> None:
        self.conn = None  # the process keeps running, as after a detach; its output is dropped

    def exited(self, code: int) -> None:
        """The shim reaped the exec's process."""
        self.exit_code = code
        self._check_done()

    def _check_done(self) -> None:
        if self.done or self._setup is not None or self.exit_code is None and self.pid is not None:
            return
        if self.stdio is not None and not self.stdio.drained:
            if self._drain_timer is None:
                self._drain_timer = self.shim.loop.call_later(DRAIN_TIMEOUT, self._drain_expired)
            return
        self._end()

    def _drain_expired(self) -> None:
        if not self.done:
            self._end()

    def _end(self) -> None:
        self.done = True
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        if self.stdio is not None:
            self.stdio.close()
        if self.conn is not None and self.exit_code is not None:
            self.conn.send(wire.frame(wire.EXIT, json.dumps({"exit_code": self.exit_code}).encode()))
        if self.conn is not None:
            self.conn.close_after_flush()
        self.shim.execs.discard(self)
        self.shim.maybe_finish()

    def abandon(self) -> None:
        """The container has stopped: end now with whatever is known."""
        if self._setup is not None:
            self.shim.loop.remove_reader(self._setup.fileno())
            self._setup.close()
            self._setup = None
            self._close_fds()
        if not self.done:
            self._end()
