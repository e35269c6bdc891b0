"""The creator: the shim's short-lived child that makes the container's init.

Parsing config.json, creating the cgroup and forking the init allocate and
run far more than an idle shim should keep (every page a shim touches is a
private copy of the forkserver's), so the shim forks this child to do it.
The creator forks the init into a new pid namespace (container.py), creates
the cgroup and moves the init into it while the init builds its root (before
it can run anything of the image), waits for "created", writes state.json,
hands the shim what it needs to serve (the init's pid, its socket and stdio
fds, a few config values) and exits. The init, orphaned, becomes the shim's child (the shim is a child
subreaper). A failure is recorded in state.json and reported on the agent's
ready pipe by the creator itself. Stdlib only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import traceback
from typing import NoReturn

from agent import linux
from agent.runtime import container
from agent.runtime.cgroups import CgroupV1, CgroupV2, open_cgroup
from agent.runtime.oci import ANNOTATION_LOG_PATH, ANNOTATION_OPEN_STDIN
from agent.runtime.state import Status, TaskState, process_start_time, sync_state, write_state
from kran.timefmt import now_rfc3339


class CreateFailed(Exception):
    """The container could not be created; exit_code as Docker reports it."""

    def __init__(self, message: str, exit_code: int = container.EXIT_SETUP_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


def report(ready_fd: int, message: dict) -> None:
    """Tell the agent how create went (one JSON line on its ready pipe)."""
    try:
        os.write(ready_fd, json.dumps(message).encode() + b"\n")
    except OSError:
        pass  # the agent gave up waiting; state.json still has the outcome
    os.close(ready_fd)


def _create(bundle: str, config: dict, cgroup: CgroupV1 | CgroupV2, state: TaskState,
            ready_fd: int) -> tuple[dict, list[int]]:
    """Pid namespace, the init, its cgroup, "created"; the handoff for the shim and its fds."""
    tty = bool(config["process"].get("terminal"))
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    stdio_fds: list[int] = []
    if tty:
        child_stdio = (devnull, devnull, devnull)  # the init replaces them with its pty
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdio_fds = [out_r, err_r]
        in_r = devnull
        if config.get("annotations", {}).get(ANNOTATION_OPEN_STDIN) == "true":
            in_r, in_w = os.pipe()
            stdio_fds.append(in_w)
        child_stdio = (in_r, out_w, err_w)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    linux.unshare(linux.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        ours.close()
        os.close(ready_fd)
        for target, fd in enumerate(child_stdio):
            os.dup2(fd, target)
        container.main(bundle, config, theirs)
    theirs.close()
    for fd in set(child_stdio):
        os.close(fd)
    state.pid = pid
    _join_cgroup(cgroup, config["linux"].get("resources", {}), pid)
    message, fds = container.receive(ours)
    if not message or "error" in message:
        os.waitpid(pid, 0)
        message = message or {"error": "container init exited during setup"}
        raise CreateFailed(message["error"], message.get("exit_code", container.EXIT_SETUP_FAILED))
    if tty:
        stdio_fds = [fds[0]]
    write_state(bundle, state, sync=False)  # made durable once the shim has it (main)
    handoff = {"state": state.to_json(), "tty": tty, "cgroup": config["linux"]["cgroupsPath"],
               "log_path": config["annotations"][ANNOTATION_LOG_PATH]}
    return handoff, [ours.detach(), *stdio_fds]


def _join_cgroup(cgroup: CgroupV1 | CgroupV2, resources: dict, pid: int) -> None:
    """Make the cgroup and move the init into it, while the init builds its root.

    Moving a process costs a wait for an RCU grace period (often several
    milliseconds on cgroup v1), so it overlaps the init's mounts. The init
    runs nothing of the image before it is in: it execs only on "start",
    which comes after "created" is reported.
    """
    try:
        cgroup.create(resources)
    except OSError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    try:
        cgroup.add(pid)
    except OSError as err:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise CreateFailed(f"cannot join cgroup: {err}") from err


def main(bundle: str, ready_fd: int, shim_sock: socket.socket) -> NoReturn:
    """Create the container for the shim (this process's parent); never returns."""
    try:
        with open(os.path.join(bundle, "config.json")) as f:
            config = json.load(f)
        shim_pid = os.getppid()
        state = TaskState(id=os.path.basename(bundle), shim_pid=shim_pid,
                          shim_start_time=process_start_time(shim_pid) or 0, created_at=now_rfc3339())
        parent, _, name = config["linux"]["cgroupsPath"].rpartition("/")
        cgroup = open_cgroup(parent, name)
        try:
            handoff, fds = _create(bundle, config, cgroup, state, ready_fd)
        except (CreateFailed, OSError) as err:
            failure = err if isinstance(err, CreateFailed) else CreateFailed(f"cannot create container: {err}")
            state.move(Status.STOPPED)
            state.exit_code = failure.exit_code
            state.error = str(failure)
            state.finished_at = now_rfc3339()
            write_state(bundle, state)
            if cgroup.exists():
                cgroup.remove()
            report(ready_fd, {"error": str(failure), "exit_code": failure.exit_code})
            os._exit(0)
        container.send(shim_sock, handoff, fds)
        sync_state(bundle)  # off the agent's path: the shim already reports "created"
        os._exit(0)
    except BaseException:  # noqa: BLE001 - the shim's log keeps it; the agent sees the pipe close
        traceback.print_exc()
        os._exit(1)
