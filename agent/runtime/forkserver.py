"""The agent's handle on the forkserver: the only process that forks shims.

gRPC's threads make fork() unsafe in the agent, so the agent starts a small
process (`python -m agent.runtime.spawner FD AGENT_PID`, stdlib only, see
spawner.py) and asks it over a SOCK_SEQPACKET socketpair. A request is one JSON message,
{"op": "spawn", "bundle": PATH}, carrying one fd: the write end of the
agent's ready pipe, on which the shim reports "created" or the failure. The
answer is {"ok": true} once the shim is forked, or {"error": ...}.
The server's first message, {"ready": true}, says its imports are done.

The server dies with the agent (PR_SET_PDEATHSIG, or end of the socket);
the shims do not.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

START_TIMEOUT = 30.0


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
            # -P: the current directory must not shadow the package (a state dir named "agent").
            [sys.executable, "-P", "-m", "agent.runtime.spawner", str(theirs.fileno()), str(os.getpid())],
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
