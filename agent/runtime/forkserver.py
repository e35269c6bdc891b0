"""The forkserver: the only process that forks shims, started before grpc loads.

gRPC's threads make fork() unsafe in the agent, so the agent starts this
small process (`python -m agent.runtime.forkserver FD`, stdlib only) and asks
it over a SOCK_SEQPACKET socketpair. A request is one JSON message,
{"op": "spawn", "bundle": PATH}, carrying one fd: the write end of the
agent's ready pipe, on which the shim reports "created" or the failure. The
answer is {"ok": true} once the shim is double-forked, or {"error": ...}.
The server's first message, {"ready": true}, says its imports are done.

The server imports everything a shim and a container init need, then calls
gc.freeze() so the forked shims share those pages copy-on-write. It dies
with the agent (PR_SET_PDEATHSIG, or end of the socket); the shims do not.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from agent import linux
from agent.runtime import shim

START_TIMEOUT = 30.0


def _spawn(server: socket.socket, bundle: str, ready_fd: int) -> int:
    """Double-fork a shim for bundle; the exit status of the middle child."""
    middle = os.fork()
    if middle == 0:
        try:
            server.close()
            os.setsid()
            if os.fork() == 0:
                shim.run(bundle, ready_fd)
        finally:
            os._exit(0)
    os.close(ready_fd)
    _, status = os.waitpid(middle, 0)
    return os.waitstatus_to_exitcode(status)


def serve(server: socket.socket) -> None:
    """Answer spawn requests until the agent closes its end."""
    gc.freeze()
    server.send(json.dumps({"ready": True}).encode())
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(server, 65536, 1)
        except ConnectionError:
            return
        if not data:
            return
        for fd in fds:
            os.set_inheritable(fd, False)
        try:
            request = json.loads(data)
            if request.get("op") != "spawn" or len(fds) != 1:
                raise ValueError("expected a spawn request with one fd")
            code = _spawn(server, request["bundle"], fds[0])
            answer = {"ok": True} if code == 0 else {"error": f"shim fork exited with {code}"}
        except (ValueError, KeyError, OSError) as err:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            answer = {"error": str(err)}
        server.send(json.dumps(answer).encode())


class ForkServer:
    """The agent's handle on its forkserver process; thread-safe, one request at a time."""

    def __init__(self, process: subprocess.Popen, sock: socket.socket):
        self.process = process
        self._sock = sock
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(cls) -> "ForkServer":
        """Start the forkserver process (a fresh interpreter, so grpc's state never reaches it)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = subprocess.Popen(
            [sys.executable, "-m", "agent.runtime.forkserver", str(theirs.fileno()), str(os.getpid())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, close_fds=True)
        theirs.close()
        # Wait for the imports: a broken install fails here, not at the first create.
        ours.settimeout(START_TIMEOUT)
        try:
            ready = ours.recv(65536)
        except TimeoutError:
            ready = b""
        ours.settimeout(None)
        if not ready:
            process.kill()
            process.wait()
            ours.close()
            raise OSError("the forkserver did not start")
        return cls(process, ours)

    def spawn(self, bundle: Path, ready_fd: int) -> None:
        """Have a shim forked for bundle; ready_fd goes to it. OSError when the forkserver fails."""
        with self._lock:
            socket.send_fds(self._sock, [json.dumps({"op": "spawn", "bundle": str(bundle)}).encode()], [ready_fd])
            answer = self._sock.recv(65536)
        if not answer:
            raise OSError("the forkserver exited")
        message = json.loads(answer)
        if "error" in message:
            raise OSError(f"forkserver: {message['error']}")

    def stop(self) -> None:
        """Close the socket (the server exits) and reap it; shims keep running."""
        self._sock.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> None:
    """Entry point: `python -m agent.runtime.forkserver FD AGENT_PID`."""
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    server = socket.socket(fileno=int(sys.argv[1]))
    os.set_inheritable(server.fileno(), False)
    if os.getppid() != int(sys.argv[2]):
        return  # the agent died before PDEATHSIG was armed
    linux.set_name("kran-forkserver")
    serve(server)


if __name__ == "__main__":
    main()
