"""The forkserver process: it forks a shim for each bundle the agent sends.

Started by ForkServer (forkserver.py) as `python -m agent.runtime.spawner FD
AGENT_PID`. It imports what a shim and a container init need and nothing
else: every module's state is shared copy-on-write with the shims, and some
cost every fork (threading's after-fork hook alone copies some 300 KiB per
process), so neither subprocess nor threading may be imported here. It then
calls gc.freeze() so collections never touch the shared objects.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys

from agent import linux
from agent.runtime import shim


def _spawn(server: socket.socket, bundle: str, ready_fd: int) -> None:
    """Fork a shim for bundle.

    One fork, not a double fork: SIGCHLD is ignored here (see serve), so the
    kernel reaps a shim that exits and none waits on this process; when the
    forkserver goes, its shims are reparented like any orphan.
    """
    if os.fork() == 0:
        try:
            server.close()
            os.setsid()
            shim.run(bundle, ready_fd)
        finally:
            os._exit(0)
    os.close(ready_fd)


def serve(server: socket.socket) -> None:
    """Answer spawn requests until the agent closes its end."""
    gc.freeze()
    # The shims are its children: ignoring SIGCHLD has the kernel reap them (they reset it at once).
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
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
            _spawn(server, request["bundle"], fds[0])
            answer = {"ok": True}
        except (ValueError, KeyError, OSError) as err:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            answer = {"error": str(err)}
        server.send(json.dumps(answer).encode())


def main() -> None:
    """Entry point: `python -m agent.runtime.spawner FD AGENT_PID`."""
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    server = socket.socket(fileno=int(sys.argv[1]))
    os.set_inheritable(server.fileno(), False)
    if os.getppid() != int(sys.argv[2]):
        return  # the agent died before PDEATHSIG was armed
    linux.set_name("kran-forkserver")
    serve(server)


if __name__ == "__main__":
    main()
