"""The container's init: from the shim's fork to execve, in runc's order.

It runs as pid 1 of a new pid namespace, forked by the shim's creator,
which moves it into the container's cgroup meanwhile (it is in before
"created" is reported, so before it can exec). It makes the other
namespaces, the root filesystem (rootfs.py), hostname, loopback, the
terminal, the command looked up in the container's PATH, the bounding set,
the user switch with capabilities kept across it, the remaining capability
sets, no_new_privs, the working directory; then it reports
"created", waits for "start" and execs. A failure before exec is sent to the
shim as {"error", "exit_code"} with Docker's codes (127 not found, 126 not
executable). Everything it needs is imported before pivot_root; nothing may
be imported after. Stdlib only.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import socket
import stat
import struct
import termios
from typing import NoReturn

from agent import linux
from agent.runtime import rootfs
from agent.runtime.oci import ANNOTATION_INIT, capability_mask, overlay_dirs, overlay_lowers

EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
EXIT_SETUP_FAILED = 255
_NAMESPACES = {"mount": linux.CLONE_NEWNS, "uts": linux.CLONE_NEWUTS, "ipc": linux.CLONE_NEWIPC,
               "network": linux.CLONE_NEWNET}
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


class ExecError(Exception):
    """The command cannot run; exit_code is what Docker reports for it."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    """One message to the shim (SOCK_SEQPACKET keeps boundaries)."""
    socket.send_fds(sock, [json.dumps(message).encode()], fds or [])


def receive(sock: socket.socket) -> tuple[dict | None, list[int]]:
    """One message and the fds that came with it; None at end of stream."""
    data, fds, _, _ = socket.recv_fds(sock, 65536, 4)
    return (json.loads(data) if data else None), fds


def lookup(command: str, env: list[str]) -> str:
    """Find the command as Go's exec.LookPath does, in the container's root."""
    if "/" in command:
        return _check_executable(command, command)
    path_value = next((e[5:] for e in env if e.startswith("PATH=")), "")
    for directory in path_value.split(":"):
        candidate = os.path.join(directory or ".", command)
        try:
            return _check_executable(command, candidate)
        except ExecError:
            continue
    raise ExecError(f'exec: "{command}": executable file not found in $PATH', EXIT_NOT_FOUND)


def _check_executable(command: str, path: str) -> str:
    try:
        info = os.stat(path)
    except OSError as err:
        raise ExecError(f'exec: "{command}": stat {path}: {os.strerror(err.errno).lower()}',
                        EXIT_NOT_FOUND) from None
    if stat.S_ISDIR(info.st_mode):
        raise ExecError(f'exec: "{command}": is a directory', EXIT_NOT_EXECUTABLE)
    if not info.st_mode & 0o111:
        raise ExecError(f'exec: "{command}": permission denied', EXIT_NOT_EXECUTABLE)
    return path


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def open_terminal(uid: int, gid: int) -> tuple[int, int]:
    """A pty from the container's own devpts; the slave belongs to the user."""
    master, slave = os.openpty()
    os.fchown(slave, uid, gid)
    return master, slave


def own_pipes(uid: int, gid: int) -> None:
    """Give the user the stdio pipes, so it can reopen them (/dev/stdout); never a device like /dev/null."""
    for fd in (0, 1, 2):
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.fchown(fd, uid, gid)


def take_terminal(slave: int) -> None:
    """Make the pty slave this process's stdio and controlling terminal."""
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def drop_privileges(process: dict) -> None:
    """Bounding set, user switch keeping capabilities, then the other sets."""
    caps = process.get("capabilities", {})
    bounding = capability_mask(caps.get("bounding", []))
    for cap in range(linux.last_cap() + 1):
        if not bounding & (1 << cap):
            linux.prctl(linux.PR_CAPBSET_DROP, cap)
    user = process.get("user", {})
    linux.prctl(linux.PR_SET_KEEPCAPS, 1)
    os.setgroups(user.get("additionalGids") or [])
    os.setgid(user.get("gid", 0))
    os.setuid(user.get("uid", 0))
    linux.prctl(linux.PR_SET_KEEPCAPS, 0)
    linux.capset(capability_mask(caps.get("effective", [])), capability_mask(caps.get("permitted", [])),
                 capability_mask(caps.get("inheritable", [])))
    linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
    if process.get("noNewPrivileges"):
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ; an exec'd program expects defaults."""
    for sig in range(1, signal.NSIG):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def exec_command(path: str, process: dict, sock: socket.socket) -> NoReturn:
    """execve; on failure tell the shim and exit with Docker's code."""
    os.closerange(3, sock.fileno())
    os.closerange(sock.fileno() + 1, 1 << 16)
    reset_signals()
    env = dict(entry.split("=", 1) if "=" in entry else (entry, "") for entry in process["env"])
    try:
        os.execve(path, process["args"], env)
    except OSError as err:
        code = EXIT_NOT_FOUND if err.errno == errno.ENOENT else EXIT_NOT_EXECUTABLE
        send(sock, {"error": f'exec: "{process["args"][0]}": {os.strerror(err.errno).lower()}',
                    "exit_code": code})
        os._exit(code)


def _run_init(path: str, process: dict, sock: socket.socket, slave: int | None) -> NoReturn:
    """--init: run the command as a child, forward signals, reap, exit as it did."""
    child = os.fork()
    if child == 0:
        if slave is not None:
            take_terminal(slave)
        exec_command(path, process, sock)
    sock.close()
    if slave is not None:
        os.close(slave)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in set(signal.Signals) - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}:
        signal.signal(sig, forward)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


def main(bundle: str, config: dict, sock: socket.socket) -> NoReturn:
    """The container's init; never returns."""
    try:
        process = config["process"]
        flags = 0
        for namespace in config["linux"]["namespaces"]:
            flags |= _NAMESPACES.get(namespace["type"], 0)
        linux.unshare(flags)
        bundle = os.path.abspath(bundle)
        rootfs.setup(bundle, config, overlay_lowers(config), *overlay_dirs(config, bundle))
        if config.get("hostname"):
            socket.sethostname(config["hostname"])
        _loopback_up()
        user = process.get("user", {})
        master = slave = None
        if process.get("terminal"):
            master, slave = open_terminal(user.get("uid", 0), user.get("gid", 0))
        else:
            own_pipes(user.get("uid", 0), user.get("gid", 0))
        path = lookup(process["args"][0], process["env"])
        cwd = process.get("cwd") or "/"
        os.makedirs(cwd, mode=0o755, exist_ok=True)
        drop_privileges(process)
        os.chdir(cwd)
        send(sock, {"created": True}, [master] if master is not None else None)
        if master is not None:
            os.close(master)
        message, _ = receive(sock)
        if message != {"start": True}:
            os._exit(EXIT_SETUP_FAILED)
        if config.get("annotations", {}).get(ANNOTATION_INIT) == "true":
            _run_init(path, process, sock, slave)
        if slave is not None:
            take_terminal(slave)
        exec_command(path, process, sock)
    except ExecError as err:
        send(sock, {"error": str(err), "exit_code": err.exit_code})
        os._exit(err.exit_code)
    except BaseException as err:  # noqa: BLE001 - anything here must reach the shim, not a traceback
        try:
            send(sock, {"error": f"container init: {err}", "exit_code": EXIT_SETUP_FAILED})
        finally:
            os._exit(EXIT_SETUP_FAILED)
