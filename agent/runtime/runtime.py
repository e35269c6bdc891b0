"""The runtime's API for the agent: create, start, kill, wait, state, delete, attach.

Each container has a bundle directory <state>/containers/<id>/ with the OCI
config.json, the overlay's upper and work directories, the /etc files the
container sees, and state.json, which its shim keeps. The runtime itself
holds no state: every call reads the bundle or asks the shim, so a new
Runtime after an agent restart finds every container again (recover()).

Create runs the container up to the point of exec (namespaces, mounts,
user, capabilities) and fails there with Docker's semantics when the
command cannot run (ExecError: 127 not found, 126 not executable); the
bundle then holds a stopped state with that exit code until delete().
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
from pathlib import Path

from agent import linux
from agent.runtime import oci, shimclient
from agent.runtime.cgroups import open_cgroup
from agent.runtime.forkserver import ForkServer
from agent.runtime.exec_process import build_process, resolve_exec_user
from agent.runtime.exec_process import validate as validate_exec
from agent.runtime.shimclient import Attach, ExecSession, ShimGone
from agent.runtime.spec import ContainerSpec, ExecSpec
from agent.runtime.state import ExitStatus, Status, TaskState, process_start_time, read_state
from agent.runtime.users import resolve_in_image
from kran import errors

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MIN_MEMORY = 6 * 1024 * 1024  # Docker's minimum for --memory
CREATE_TIMEOUT = 30.0
SHIM_EXIT_TIMEOUT = 10.0


class ExecError(errors.InvalidArgument):
    """The container's command cannot run; exit_code is Docker's (127 or 126)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def validate(spec: ContainerSpec) -> None:
    """InvalidArgument, with a message for a user, for a spec that cannot run."""
    if not _ID.match(spec.id):
        raise errors.InvalidArgument(f"invalid container id {spec.id!r}")
    if not spec.args or not spec.args[0]:
        raise errors.InvalidArgument("no command specified")
    if not spec.lowers:
        raise errors.InvalidArgument("the container has no image layers")
    for lower in spec.lowers:
        if not Path(lower).is_dir():
            raise errors.InvalidArgument(f"image layer {lower} does not exist")
        if any(c in str(lower) for c in ":,\n"):
            raise errors.InvalidArgument(f"image layer path {lower} cannot be used in an overlay mount")
    if (spec.upper_dir is None) != (spec.work_dir is None):
        raise errors.InvalidArgument("the overlay's upper and work directories go together")
    for own in (spec.upper_dir, spec.work_dir):
        if own is not None and (not Path(own).is_absolute() or any(c in str(own) for c in ":,\n")):
            raise errors.InvalidArgument(f"overlay directory {own} must be an absolute path without ':' or ','")
    if not spec.cwd.startswith("/"):
        raise errors.InvalidArgument(
            f"the working directory '{spec.cwd}' is invalid, it needs to be an absolute path")
    if spec.memory_limit and spec.memory_limit < MIN_MEMORY:
        raise errors.InvalidArgument("Minimum memory limit allowed is 6MB")
    if spec.memory_limit < 0 or spec.pids_limit < 0 or spec.cpu_quota < 0:
        raise errors.InvalidArgument("limits cannot be negative")
    if spec.cpu_quota and not 1000 <= spec.cpu_period <= 1_000_000:
        raise errors.InvalidArgument("CPU period must be between 1ms and 1s")
    if spec.cpu_quota and spec.cpu_quota < 1000:
        raise errors.InvalidArgument("CPU quota must be at least 1ms (--cpus 0.01)")
    if len(spec.hostname) > 64:
        raise errors.InvalidArgument("hostname is longer than 64 characters")
    if any("\0" in value for value in [*spec.args, *spec.env, spec.cwd, spec.hostname]):
        raise errors.InvalidArgument("arguments and environment cannot contain NUL bytes")


def _exec_failed(reason: str) -> str:
    """Docker's words for an exec that could not start."""
    return f"OCI runtime exec failed: exec failed: unable to start container process: {reason}: unknown"


async def _read_report(fd: int) -> bytes:
    """The shim's one-line report on the ready pipe (b"" if every writer closed first); closes fd.

    Read on the event loop, up to the newline: end of file comes only once
    the shim's short-lived children have exited too.
    """
    loop = asyncio.get_running_loop()
    received = bytearray()
    done = loop.create_future()

    def readable() -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        received.extend(chunk)
        if (not chunk or b"\n" in chunk) and not done.done():
            done.set_result(None)

    os.set_blocking(fd, False)
    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return bytes(received)


def _shim_alive(state: TaskState) -> bool:
    return bool(state.shim_pid) and process_start_time(state.shim_pid) == state.shim_start_time


def _mounts_below(path: Path) -> list[str]:
    prefix = str(path) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted((p for p in points if p.startswith(prefix) or p == str(path)), reverse=True)


class Runtime:
    """Containers on this host, from bundles under state_dir/containers."""

    def __init__(self, state_dir: Path, forkserver: ForkServer, cgroup_parent: str = "kran"):
        self.containers_dir = Path(state_dir) / "containers"
        self.containers_dir.mkdir(parents=True, exist_ok=True)
        self.forkserver = forkserver
        self.cgroup_parent = cgroup_parent

    def bundle(self, container_id: str) -> Path:
        """The container's bundle directory (which may not exist)."""
        if not _ID.match(container_id):
            raise errors.InvalidArgument(f"invalid container id {container_id!r}")
        return self.containers_dir / container_id

    def _existing(self, container_id: str) -> Path:
        bundle = self.bundle(container_id)
        if not bundle.is_dir():
            raise errors.NotFound(f"no such container: {container_id}")
        return bundle

    def log_path(self, container_id: str) -> Path:
        """Where the container's json-file log is."""
        with open(self._existing(container_id) / "config.json") as f:
            return Path(json.load(f)["annotations"][oci.ANNOTATION_LOG_PATH])

    def list(self) -> list[str]:
        """Ids of every container with a bundle."""
        return sorted(p.name for p in self.containers_dir.iterdir() if p.is_dir())

    async def create(self, spec: ContainerSpec) -> None:
        """Create the container and its process, stopped just before exec, waiting for start()."""
        validate(spec)
        user = resolve_in_image(spec.user, [Path(p) for p in spec.lowers])
        bundle = self.bundle(spec.id)
        for own in (spec.upper_dir, spec.work_dir):
            # delete() removes the bundle; what the caller keeps must live elsewhere.
            if own is not None and Path(own).resolve().is_relative_to(bundle.resolve()):
                raise errors.InvalidArgument(f"overlay directory {own} cannot be inside the bundle {bundle}")
        try:
            bundle.mkdir()
        except FileExistsError:
            raise errors.AlreadyExists(f"container {spec.id} already exists") from None
        config = oci.build_config(spec, user, bundle, self.cgroup_parent)
        (bundle / "rootfs").mkdir()
        if spec.upper_dir is None:
            (bundle / "upper").mkdir()
            (bundle / "work").mkdir()
        else:
            Path(spec.upper_dir).mkdir(parents=True, exist_ok=True)
            Path(spec.work_dir).mkdir(parents=True, exist_ok=True)
        oci.write_etc_files(bundle, config["hostname"])
        with open(bundle / "config.json", "w") as f:
            json.dump(config, f, indent=1)
        ready_r, ready_w = os.pipe()
        try:
            await asyncio.to_thread(self.forkserver.spawn, bundle, ready_w)
        except OSError as err:
            os.close(ready_r)
            shutil.rmtree(bundle)
            raise errors.Unavailable(f"cannot start a shim: {err}") from err
        finally:
            os.close(ready_w)
        try:
            line = await asyncio.wait_for(_read_report(ready_r), CREATE_TIMEOUT)
        except asyncio.TimeoutError:
            raise errors.Internal(f"container {spec.id} was not created within {CREATE_TIMEOUT:.0f}s") from None
        report = json.loads(line) if line.strip() else {"error": "the shim exited before reporting"}
        if "error" in report:
            code = report.get("exit_code", 255)
            if code in (126, 127):
                raise ExecError(report["error"], code)
            raise errors.Internal(f"cannot create container {spec.id}: {report['error']}")

    async def start(self, container_id: str) -> None:
        """Let the created container exec its command."""
        bundle = self._existing(container_id)
        try:
            answer = await shimclient.request(bundle, {"op": "start"}, check=False)
        except ShimGone:
            raise errors.FailedPrecondition(f"container {container_id} is {self.state(container_id).status.value}, "
                                            "it cannot be started") from None
        if answer.get("kind") == "exec":
            raise ExecError(answer["error"], answer["exit_code"])
        shimclient.raise_for(answer)

    async def kill(self, container_id: str, sig: int = signal.SIGTERM) -> None:
        """Send a signal to the container's init."""
        bundle = self._existing(container_id)
        try:
            await shimclient.request(bundle, {"op": "kill", "signal": int(sig)})
        except ShimGone:
            raise errors.FailedPrecondition(f"container {container_id} is not running") from None

    async def wait(self, container_id: str, timeout: float | None = None) -> ExitStatus:
        """Wait until the container has stopped; its exit. TimeoutError after timeout seconds."""
        bundle = self._existing(container_id)
        try:
            await asyncio.wait_for(shimclient.request(bundle, {"op": "wait"}), timeout)
        except ShimGone:
            pass
        status = self.state(container_id).exit_status()
        if status is None:
            raise errors.Internal(f"container {container_id}'s shim ended without recording an exit")
        return status

    def state(self, container_id: str) -> TaskState:
        """The container's task as its shim last recorded it (stopped if the shim died)."""
        bundle = self._existing(container_id)
        try:
            state = read_state(bundle)
        except FileNotFoundError:
            return TaskState(id=container_id)  # its shim is still setting it up
        if state.status is not Status.STOPPED and not _shim_alive(state):
            state.status = Status.STOPPED
            state.exit_code = 255
            state.error = "the container's shim exited unexpectedly"
        return state

    async def attach(self, container_id: str) -> Attach:
        """Attach to the container's stdio (see Attach)."""
        try:
            return await Attach.open(self._existing(container_id))
        except ShimGone:
            raise errors.FailedPrecondition(f"container {container_id} is not running") from None

    async def resize(self, container_id: str, height: int, width: int) -> None:
        """Set the size of the container's terminal."""
        try:
            await shimclient.request(self._existing(container_id),
                                     {"op": "resize", "height": height, "width": width})
        except ShimGone:
            raise errors.FailedPrecondition(f"container {container_id} is not running") from None

    async def exec(self, container_id: str, spec: ExecSpec) -> ExecSession:
        """Start a process in the running container (docker exec); see ExecSession.

        ExecError (exit_code 127 or 126, Docker's message) when the command,
        its working directory or its user cannot be used; the process has
        then not run.
        """
        validate_exec(spec)
        bundle = self._existing(container_id)
        state = self.state(container_id)
        not_running = errors.FailedPrecondition(f"container {container_id} is not running")
        if state.status is not Status.RUNNING:
            raise not_running
        with open(bundle / "config.json") as f:
            config = json.load(f)
        try:
            user = await asyncio.to_thread(resolve_exec_user, spec.user, state.pid)
        except errors.InvalidArgument as err:
            raise ExecError(_exec_failed(str(err)), 126) from None
        except OSError:
            raise not_running from None  # the init (and its /proc entry) is gone
        request = {"op": "exec", "process": build_process(config, spec, user, linux.last_cap()),
                   "stdin": spec.stdin, "detach": spec.detach}
        if spec.size is not None:
            request["height"], request["width"] = spec.size
        try:
            session, answer = await ExecSession.open(bundle, request)
        except ShimGone:
            raise not_running from None
        if answer.get("kind") == "exec":
            raise ExecError(_exec_failed(answer["error"]), answer["exit_code"])
        if answer.get("kind") == "state":
            raise not_running
        shimclient.raise_for(answer)
        return session

    def recover(self) -> list[str]:
        """Ids of containers whose shim is alive (after an agent restart)."""
        alive = []
        for container_id in self.list():
            with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
                state = read_state(self.containers_dir / container_id)
                if state.status is not Status.STOPPED and _shim_alive(state):
                    alive.append(container_id)
        return alive

    async def delete(self, container_id: str, force: bool = False) -> None:
        """Remove the container: its processes, shim, cgroup, mounts and bundle."""
        bundle = self._existing(container_id)
        state = self.state(container_id)
        if state.status is Status.RUNNING and not force:
            raise errors.FailedPrecondition(
                f"cannot remove container {container_id}: it is running, stop it first or force the removal")
        if state.shim_pid and _shim_alive(state):
            with contextlib.suppress(ShimGone, errors.KranError):
                await shimclient.request(bundle, {"op": "kill", "signal": int(signal.SIGKILL)})
            await self._wait_shim_exit(state)
        # Reap the shim if this process is its parent (a subreaper above it in tests).
        with contextlib.suppress(ChildProcessError):
            if state.shim_pid:
                os.waitpid(state.shim_pid, os.WNOHANG)
        parent, _, name = f"{self.cgroup_parent}/{container_id}".rpartition("/")
        cgroup = open_cgroup(parent, name)
        if cgroup.exists():
            await asyncio.to_thread(cgroup.remove)
        for point in _mounts_below(bundle):
            linux.umount2(point, linux.MNT_DETACH)
        await asyncio.to_thread(shutil.rmtree, bundle)

    async def _wait_shim_exit(self, state: TaskState) -> None:
        try:
            pidfd = os.pidfd_open(state.shim_pid)
        except ProcessLookupError:
            return
        loop = asyncio.get_running_loop()
        gone = loop.create_future()
        loop.add_reader(pidfd, lambda: gone.done() or gone.set_result(None))
        try:
            await asyncio.wait_for(gone, SHIM_EXIT_TIMEOUT)
        except asyncio.TimeoutError:
            if _shim_alive(state):
                os.kill(state.shim_pid, signal.SIGKILL)
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
