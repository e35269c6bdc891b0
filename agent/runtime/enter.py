"""Entering a running container for an exec, in the helper the shim forks.

In runc's order for `runc exec`: join the container's cgroup (while the
host's /sys/fs/cgroup is still in view), open the init's namespaces and
root, join ipc, uts, net, pid and mount, take the container's root; open the
pty in the container's own devpts; fork, so that the child is in the pid
namespace; send the shim the child's host pid and exit. The child takes its
terminal (or a new session), switches user with the capabilities it is
given, sets no_new_privs, changes to the working directory, looks the
command up in the exec's PATH and execs. Failures reach the shim as
{"error", "exit_code"} with Docker's codes. Stdlib only.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
from typing import NoReturn

from agent import linux
from agent.runtime import container
from agent.runtime.cgroups import CgroupV1, CgroupV2
from agent.runtime.container import ExecError
from agent.runtime.shimio import set_window_size

# ipc, uts and net before pid; mount last, as it changes what paths mean.
NAMESPACES = ("ipc", "uts", "net", "pid", "mnt")


def _join(init_pid: int) -> None:
    """Join the namespaces of the container's init and take its root as ours."""
    ns_fds = [os.open(f"/proc/{init_pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC) for ns in NAMESPACES]
    root_fd = os.open(f"/proc/{init_pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for fd in ns_fds:
            linux.setns(fd)
        # The root and working directory after setns are the namespace's root mount, not
        # necessarily the directory the init pivoted into: take the init's.
        os.fchdir(root_fd)
        os.chroot(".")
    finally:
        for fd in [*ns_fds, root_fd]:
            os.close(fd)


def _run(process: dict, sock: socket.socket, slave: int | None) -> NoReturn:
    """The exec's process, inside the container: user, capabilities, cwd, command."""
    try:
        user = process.get("user", {})
        if slave is not None:
            container.take_terminal(slave)
        else:
            os.setsid()
            container.own_pipes(user.get("uid", 0), user.get("gid", 0))
        container.drop_privileges(process)
        cwd = process.get("cwd") or "/"
        try:
            os.chdir(cwd)
        except OSError as err:
            code = container.EXIT_NOT_FOUND if err.errno == errno.ENOENT else container.EXIT_NOT_EXECUTABLE
            raise ExecError(f'chdir to cwd ("{cwd}") set in config.json failed: '
                            f'{os.strerror(err.errno).lower()}', code) from None
        path = container.lookup(process["args"][0], process["env"])
        container.exec_command(path, process, sock)
    except ExecError as err:
        container.send(sock, {"error": str(err), "exit_code": err.exit_code})
        os._exit(err.exit_code)
    except BaseException as err:  # noqa: BLE001 - anything here must reach the shim, not a traceback
        try:
            container.send(sock, {"error": f"exec: {err}", "exit_code": container.EXIT_SETUP_FAILED})
        finally:
            os._exit(container.EXIT_SETUP_FAILED)


def main(init_pid: int, cgroup: CgroupV1 | CgroupV2, request: dict, sock: socket.socket) -> NoReturn:
    """The helper: enter the container, fork the exec's process, report its pid; never returns."""
    try:
        signal.set_wakeup_fd(-1)  # the shim's loop is not ours
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        process = request["process"]
        cgroup.add(os.getpid())
        _join(init_pid)
        master = slave = None
        if process.get("terminal"):
            user = process.get("user", {})
            master, slave = container.open_terminal(user.get("uid", 0), user.get("gid", 0))
            if request.get("height") and request.get("width"):
                set_window_size(master, int(request["height"]), int(request["width"]))
        child = os.fork()
        if child == 0:
            if master is not None:
                os.close(master)
            _run(process, sock, slave)
        container.send(sock, {"pid": child}, [master] if master is not None else None)
        os._exit(0)
    except BaseException as err:  # noqa: BLE001
        try:
            container.send(sock, {"error": f"cannot enter the container: {err}",
                                  "exit_code": container.EXIT_SETUP_FAILED})
        finally:
            os._exit(container.EXIT_SETUP_FAILED)
