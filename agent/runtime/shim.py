"""The shim: one per container, parent of its init, keeper of its stdio and exit.

Forked by the forkserver (its own session and process group, a child
subreaper), it outlives the agent. Its short-lived child (creator.py) makes
the cgroup and the container's init, which then becomes the shim's child;
the shim reports "created" on the agent's ready pipe. Then it serves bundle/shim.sock (wire.py) for
start, kill, state, wait, attach, resize and exec (shimexec.py), writes
stdout/stderr to the json-file log, and on exit records exit code, OOM kill
and time in state.json, removes the cgroup and exits.

It runs on a small selectors loop (eventloop.py), not asyncio, and with the
garbage collector off: what an idle shim costs is the pages it copies from
the forkserver, so it touches as few objects as it can. Stdlib only.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import traceback
from typing import NoReturn

from agent import linux
from agent.runtime import container, creator, wire
from agent.runtime.cgroups import CgroupV1, CgroupV2, open_cgroup
from agent.runtime.creator import report
from agent.runtime.eventloop import Loop
from agent.runtime.logfile import LogWriter
from agent.runtime.shimexec import ShimExec
from agent.runtime.shimio import DRAIN_TIMEOUT, Conn, Stdio
from agent.runtime.state import SOCKET_FILE, Status, TaskState, TransitionError, sync_state, write_state
from kran.timefmt import now_rfc3339

_STREAM_NAMES = {wire.STDOUT: "stdout", wire.STDERR: "stderr"}


def exit_code_of(status: int) -> int:
    """A wait status as Docker reports it: the exit code, or 128+signal."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


class Shim:
    """One container's shim: its init process, stdio, log, status and execs."""

    def __init__(self, bundle: str, handoff: dict, fds: list[int]):
        self.bundle = bundle
        self.state = TaskState.from_json(handoff["state"])
        self.cgroup_path = handoff["cgroup"]
        self.log_path = handoff["log_path"]
        self.tty = bool(handoff["tty"])
        self.loop = Loop()
        self.init_sock: socket.socket | None = socket.socket(fileno=fds[0])
        self.stdio: Stdio | None = None
        self.conns: set[Conn] = set()
        self.attached: set[Conn] = set()
        self.waiters: list[Conn] = []
        self.execs: set[ShimExec] = set()
        self.exit_code: int | None = None      # the init's, once reaped
        self.finished = False                  # the exit is recorded
        self.helpers: set[int] = set()         # exec setup processes, reaped and forgotten
        self.unclaimed_exits: dict[int, int] = {}  # exec pids reaped before their exec knew its pid
        if self.tty:
            self._outputs = {fds[1]: wire.STDOUT}
            self._stdin_fd: int | None = fds[1]
        else:
            self._outputs = {fds[1]: wire.STDOUT, fds[2]: wire.STDERR}
            self._stdin_fd = fds[3] if len(fds) > 3 else None
        self._starting: Conn | None = None
        self._start_failure: tuple[Conn, dict] | None = None
        self._drain_expired = False
        self._drain_timer = None

    # -- serving --

    def serve(self, listener: socket.socket) -> None:
        """Serve the socket until the container has exited and its exit is recorded."""
        self.log = LogWriter(self.log_path)
        self.stdio = Stdio(self.loop, self._outputs, self._stdin_fd, self.tty, self._on_output, self.maybe_finish)
        self.stdio.on_stdin_room = self._resume_attached
        self.stdio.start()
        self.loop.on_sigchld(self._reap)
        listener.setblocking(False)
        self.loop.add_reader(listener.fileno(), lambda: self._accept(listener))
        self._reap()
        self.loop.run(lambda: self.finished)
        self.loop.remove_reader(listener.fileno())
        listener.close()
        os.unlink(SOCKET_FILE)
        expired = []
        self.loop.call_later(DRAIN_TIMEOUT, lambda: expired.append(True))
        self.loop.run(lambda: not self.conns or expired)

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return
        conn = Conn(self.loop, sock, self._request)
        self.conns.add(conn)
        conn.closers.append(lambda: self.conns.discard(conn))

    def _request(self, conn: Conn, request: dict) -> None:
        handler = {"start": self._start, "kill": self._kill, "wait": self._wait, "state": self._state,
                   "resize": self._resize, "attach": self._attach, "exec": self._exec}.get(request.get("op"))
        if handler is None:
            conn.answer({"error": f"unknown op {request.get('op')!r}", "kind": "invalid"})
            return
        try:
            handler(conn, request)
        except (ValueError, KeyError, TypeError) as err:
            conn.answer({"error": f"bad request: {err}", "kind": "invalid"})

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == self.state.pid:
                if self.exit_code is None:
                    self.exit_code = exit_code_of(status)
            elif pid in self.helpers:
                self.helpers.discard(pid)
            else:
                owner = next((e for e in self.execs if e.pid == pid), None)
                if owner is not None:
                    owner.exited(exit_code_of(status))
                elif len(self.unclaimed_exits) < 256:
                    self.unclaimed_exits[pid] = exit_code_of(status)
        self.maybe_finish()

    def _on_output(self, stream: int, data: bytes) -> None:
        self.log.write(_STREAM_NAMES[stream], data)
        chunk = wire.frame(stream, data)
        for conn in list(self.attached):
            conn.send(chunk)

    def running(self) -> bool:
        """Started and not yet exited (what exec needs)."""
        return self.state.status is Status.RUNNING and self.exit_code is None and self._starting is None

    def maybe_finish(self) -> None:
        """Record the exit once the init is gone and its output and execs are done (or took too long)."""
        if self.finished or self.exit_code is None or self._starting is not None:
            return
        busy = not self.stdio.drained or any(not e.done for e in self.execs)
        if busy and not self._drain_expired:
            if self._drain_timer is None:
                self._drain_timer = self.loop.call_later(DRAIN_TIMEOUT, self._drain_expire)
            return
        self._finish(self.exit_code)

    def _drain_expire(self) -> None:
        self._drain_expired = True
        self.maybe_finish()

    def cgroup(self) -> CgroupV1 | CgroupV2:
        """The container's cgroup (made when needed: an idle shim keeps no pathlib objects)."""
        parent, _, name = self.cgroup_path.rpartition("/")
        return open_cgroup(parent, name)

    def _finish(self, code: int) -> None:
        self.finished = True  # first: ending the execs below calls maybe_finish again
        self.log.close()
        self.state.exit_code = code
        cgroup = self.cgroup()
        self.state.oom_killed = cgroup.oom_kills() > 0
        self.state.finished_at = now_rfc3339()
        self.state.move(Status.STOPPED)
        self.stdio.close()
        for shim_exec in list(self.execs):
            shim_exec.abandon()
        cgroup.remove()
        write_state(self.bundle, self.state, sync=False)
        state = self.state.to_json()
        final = wire.frame(wire.EXIT, json.dumps(state).encode())
        for conn in list(self.attached):
            conn.send(final)
            conn.close_after_flush()
        for conn in self.waiters:
            conn.answer({"ok": True, "state": state})
        if self._start_failure is not None:
            conn, failure = self._start_failure
            conn.answer({"error": failure["error"], "kind": "exec", "exit_code": failure["exit_code"]})
        sync_state(self.bundle)  # after the answers: waiters need not wait for the disk

    # -- requests --

    def _start(self, conn: Conn, _request: dict) -> None:
        try:
            self.state.move(Status.RUNNING)
        except TransitionError as err:
            conn.answer({"error": str(err), "kind": "state"})
            return
        assert self.init_sock is not None
        self._starting = conn
        try:
            container.send(self.init_sock, {"start": True})
        except OSError:
            pass  # the init is gone; its end of file below says so
        self.init_sock.setblocking(False)
        self.loop.add_reader(self.init_sock.fileno(), self._init_answered)

    def _init_answered(self) -> None:
        """The init exec'd (end of file on its socket) or reported why it could not."""
        sock = self.init_sock
        try:
            answer = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            answer = b""
        self.loop.remove_reader(sock.fileno())
        sock.close()
        self.init_sock = None
        conn, self._starting = self._starting, None
        if answer:
            failure = json.loads(answer)
            self.state.error = failure["error"]
            self._start_failure = (conn, failure)  # answered once the exit is recorded
        else:
            self.state.started_at = now_rfc3339()
            written = self.exit_code is None
            if written:
                write_state(self.bundle, self.state, sync=False)
            conn.answer({"ok": True})
            if written:
                sync_state(self.bundle)  # after the answer: the agent need not wait for the disk
        self.maybe_finish()

    def _kill(self, conn: Conn, request: dict) -> None:
        signum = int(request["signal"])
        if self.exit_code is not None:
            conn.answer({"error": "container is not running", "kind": "state"})
            return
        try:
            os.kill(self.state.pid, signum)
        except ProcessLookupError:
            conn.answer({"error": "container is not running", "kind": "state"})
            return
        conn.answer({"ok": True})

    def _wait(self, conn: Conn, _request: dict) -> None:
        if self.finished:
            conn.answer({"ok": True, "state": self.state.to_json()})
        else:
            self.waiters.append(conn)

    def _state(self, conn: Conn, _request: dict) -> None:
        conn.answer({"ok": True, "state": self.state.to_json()})

    def _resize(self, conn: Conn, request: dict) -> None:
        height, width = int(request["height"]), int(request["width"])
        if self.stdio.resize(height, width):
            conn.answer({"ok": True})
        else:
            conn.answer({"error": "the container has no terminal", "kind": "state"})

    def _attach(self, conn: Conn, _request: dict) -> None:
        if self.finished:
            conn.answer({"error": "container is not running", "kind": "state"})
            return
        conn.answer({"ok": True, "tty": self.tty, "stdin": self.stdio.stdin_fd is not None}, keep_open=True)
        self.attached.add(conn)
        conn.closers.append(lambda: self.attached.discard(conn))
        conn.serve_frames(lambda stream, data: self._attached_frame(conn, stream, data))

    def _attached_frame(self, conn: Conn, stream: int, data: bytes) -> None:
        if stream == wire.STDIN:
            self.stdio.write_stdin(data)
            if self.stdio.stdin_full:
                conn.pause(True)
        elif stream == wire.RESIZE:
            self.stdio.resize(*wire.SIZE.unpack(data))

    def _resume_attached(self) -> None:
        if not self.stdio.stdin_full:
            for conn in list(self.attached):
                conn.pause(False)

    def _exec(self, conn: Conn, request: dict) -> None:
        if not self.running():
            conn.answer({"error": f"container {self.state.id} is not running", "kind": "state"})
            return
        shim_exec = ShimExec(self, conn, request)
        self.execs.add(shim_exec)
        shim_exec.spawn()


def run(bundle: str, ready_fd: int) -> NoReturn:
    """The shim's life, in the process the forkserver forked (its own session already)."""
    try:
        gc.disable()  # collections would touch (and copy) the forkserver's objects; the shim makes few cycles
        # The forkserver ignores SIGCHLD (the kernel reaps its shims); the shim must see its children's exits.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
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
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        creator_pid = os.fork()
        if creator_pid == 0:
            ours.close()
            creator.main(bundle, ready_fd, theirs)
        theirs.close()
        handoff, fds = container.receive(ours)
        ours.close()
        if handoff is None:
            os.waitpid(creator_pid, 0)
            os._exit(0)  # the creator recorded and reported the failure
        shim = Shim(bundle, handoff, fds)
        # Not waited for here: the creator still makes state.json durable. Once it exits, the init
        # becomes this process's child (a child subreaper), and the loop reaps the creator.
        shim.helpers.add(creator_pid)
        # Listening before "created" is reported: the agent's next call is start.
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(SOCKET_FILE)
        listener.listen(64)
        report(ready_fd, {"ok": True, "pid": shim.state.pid, "shim_pid": os.getpid()})
        shim.serve(listener)
        os._exit(0)
    except BaseException:  # noqa: BLE001 - the shim has no one to raise to; shim.log keeps it
        traceback.print_exc()
        os._exit(1)
