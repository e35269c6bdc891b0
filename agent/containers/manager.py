"""The agent's containers: records, their tasks in the runtime, and their observed state.

Create only records a container. Start makes its task (runtime.create +
runtime.start over the image's layers and the container's own upper dir)
and a supervisor: one asyncio task per live container that waits for the
task to exit, records the exit, applies the restart policy (with backoff)
or --rm, and deletes the task's bundle. Every change of observed state
bumps the container's sequence, is saved in container.json and handed to
`report` (the registration loop sends it to the controller).

Each record's lock is held only while its state moves, never while a task
runs, so stop, kill and remove can always reach a supervisor waiting on
an exit. Waiters (Wait, Stop, Attach) watch the record through until().
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import posixpath
import secrets
import shutil
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from agent.containers import records, restart
from agent.containers.records import ContainerRecord
from agent.images.store import ImageStore
from agent.runtime.runtime import Runtime
from agent.runtime.spec import ContainerSpec
from agent.runtime.state import ExitStatus
from kran import errors
from kran.api.v1 import containers_pb2, nodes_pb2
from kran.timefmt import now_rfc3339

log = logging.getLogger(__name__)

EXIT_UNKNOWN = 128          # Docker's exit code for a start that failed for another reason
KILL_WAIT = 30.0            # how long to wait for a SIGKILLed task to be reaped
_WAIT_CONDITIONS = ("not-running", "next-exit", "removed")

Report = Callable[[nodes_pb2.ContainerReport], None]


def _ran_for(state: containers_pb2.ContainerState) -> float:
    """Seconds since the task started."""
    started = state.started_at
    return max(time.time() - (started.seconds + started.nanos / 1e9), 0.0) if started.seconds else 0.0


class ContainerManager:
    """This node's containers, under state_dir/containers, run by `runtime` from `store`'s images."""

    def __init__(self, state_dir: Path, store: ImageStore, runtime: Runtime, *,
                 node_id: str = "", node_name: str = "", report: Report | None = None) -> None:
        self.root = Path(state_dir) / "containers"
        self.root.mkdir(parents=True, exist_ok=True)
        self.store = store
        self.runtime = runtime
        self.node_id = node_id
        self.node_name = node_name
        self.report: Report = report or (lambda _report: None)
        self._records: dict[str, ContainerRecord] = {}
        self._supervisors: dict[str, asyncio.Task[None]] = {}
        self._backoffs: dict[str, restart.Backoff] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._changed: dict[str, asyncio.Event] = {}

    # -- lookup --

    def get(self, ref: str) -> ContainerRecord:
        """The container `ref` names: full id, name (with or without "/") or unique id prefix."""
        if ref in self._records:
            return self._records[ref]
        name = ref.removeprefix("/")
        for record in self._records.values():
            if record.name == name:
                return record
        matches = [r for r in self._records.values() if ref and r.id.startswith(ref)]
        if len(matches) > 1:
            raise errors.InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        if not matches:
            raise errors.NotFound(f"No such container: {ref}")
        return matches[0]

    def list(self) -> list[ContainerRecord]:
        """Every container, newest first."""
        return sorted(self._records.values(), key=lambda r: (r.created, r.id), reverse=True)

    def state(self, container_id: str) -> containers_pb2.ContainerState:
        """The container's observed state."""
        return self.get(container_id).state

    def pid(self, container_id: str) -> int | None:
        """The container's init pid (as the host sees it) while it runs, else None."""
        state = self.get(container_id).state
        return state.pid if state.status == "running" and state.pid else None

    def message(self, record: ContainerRecord) -> containers_pb2.Container:
        """The Container message for a record."""
        return containers_pb2.Container(
            id=record.id, name=record.name, created=records.timestamp(record.created),
            node_id=self.node_id, node_name=self.node_name, image_id=record.image_id,
            path=record.path, args=record.args, config=record.config, state=record.state)

    def snapshot(self) -> list[nodes_pb2.ContainerReport]:
        """Every container's state, for a full report."""
        return [nodes_pb2.ContainerReport(id=r.id, state=r.state) for r in self._records.values()]

    # -- create --

    async def create(self, request: containers_pb2.CreateContainerRequest) -> ContainerRecord:
        """Record a new container (its task is made by start)."""
        container_id = records.valid_id(request.id) if request.id else secrets.token_hex(32)
        if container_id in self._records:
            raise errors.AlreadyExists(f"container {container_id} already exists")
        name = records.valid_name(request.name) if request.name else container_id[:12]
        self._check_name_free(name)
        ref = request.config.image
        if not ref:
            raise errors.InvalidArgument("no image given for the container")
        # The hold keeps the image (and its layers) in the store while the container exists.
        image_id = await asyncio.to_thread(self.store.hold, container_id, ref)
        try:
            view = await asyncio.to_thread(self.store.inspect, image_id)
            lowers = await asyncio.to_thread(self.store.image_layers, image_id)
            image_config = json.loads(view.config).get("config") or {}
            config = records.effective_config(request.config, image_config, container_id)
            if config.working_dir:
                config.working_dir = posixpath.normpath(config.working_dir)
            records.validate(config)
            path, args = records.command(config)
            record = ContainerRecord(
                id=container_id, name=name, created=now_rfc3339(), image_id=image_id, config=config,
                path=path, args=args, lowers=lowers, dir=self.root / container_id,
                state=containers_pb2.ContainerState(status="created"))
            record.dir.mkdir()
            try:
                record.upper.mkdir()
                record.work.mkdir()
                self._changed_state(record)  # sequence 1, saved, reported
            except OSError:
                shutil.rmtree(record.dir, ignore_errors=True)
                raise
        except BaseException:
            await asyncio.to_thread(self.store.release, container_id)
            raise
        self._records[container_id] = record
        log.info("container created", extra={"container": container_id, "container_name": name, "image": ref})
        return record

    def _check_name_free(self, name: str, keep: ContainerRecord | None = None) -> None:
        for other in self._records.values():
            if other.name == name and other is not keep:
                raise errors.AlreadyExists(
                    f'Conflict. The container name "/{name}" is already in use by container "{other.id}". '
                    "You have to remove (or rename) that container to be able to reuse that name.")

    # -- start --

    async def start(self, ref: str, before_start: Callable[[], Awaitable[None]] | None = None) -> ContainerRecord:
        """Start the container's task; a no-op when it runs. before_start runs between create and start.

        A command that cannot run makes the container exited with 127/126
        and the error, and raises InvalidArgument with the runtime's message.
        """
        record = self.get(ref)
        async with record.lock:
            if record.removing:
                raise errors.FailedPrecondition(f"container {record.id} is being removed")
            if record.running:
                return record
            record.stopped_by_user = False
            record.state.restart_count = 0
            self._backoffs.pop(record.id, None)
            try:
                await self._run_task(record, before_start)
            except errors.KranError:
                if record.config.auto_remove:
                    await self._discard(record)
                raise
        return record

    def _spec(self, record: ContainerRecord) -> ContainerSpec:
        config = record.config
        return ContainerSpec(
            id=record.id, lowers=record.lowers, args=[record.path, *record.args],
            env=records.process_env(config), cwd=config.working_dir or "/", user=config.user,
            hostname=config.hostname, tty=config.tty, open_stdin=config.open_stdin,
            memory_limit=config.memory_bytes, cpu_quota=config.nano_cpus // 10_000, cpu_period=100_000,
            pids_limit=config.pids_limit, init=config.init, log_path=record.log_path,
            upper_dir=record.upper, work_dir=record.work)

    async def _run_task(self, record: ContainerRecord,
                        before_start: Callable[[], Awaitable[None]] | None = None) -> None:
        """Create and start the task (record.lock held); the state says running, or exited on failure."""
        await self._delete_task(record.id)
        try:
            await self.runtime.create(self._spec(record))
            if before_start is not None:
                await before_start()
            await self.runtime.start(record.id)
        except errors.KranError as err:
            code = getattr(err, "exit_code", EXIT_UNKNOWN)
            await self._delete_task(record.id)
            self._set_exited(record, ExitStatus(code, finished_at=now_rfc3339(), error=str(err)))
            log.info("container failed to start", extra={"container": record.id, "error": str(err)})
            raise
        except BaseException:
            await self._delete_task(record.id)
            raise
        task = self.runtime.state(record.id)
        state = record.state
        state.status = "running"
        state.pid = task.pid
        state.exit_code = 0
        state.error = ""
        state.oom_killed = False
        state.started_at.CopyFrom(records.timestamp(task.started_at or now_rfc3339()))
        self._changed_state(record)
        self._supervisors[record.id] = asyncio.create_task(self._supervise(record))

    async def _delete_task(self, container_id: str) -> None:
        """Remove the container's task and bundle from the runtime, if it has one."""
        try:
            await self.runtime.delete(container_id, force=True)
        except errors.NotFound:
            pass
        except errors.KranError as err:
            log.warning("cannot delete the container's task", extra={"container": container_id, "error": str(err)})

    # -- exits and restart policies --

    def _set_exited(self, record: ContainerRecord, status: ExitStatus) -> None:
        state = record.state
        state.status = "exited"
        state.pid = 0
        state.exit_code = status.exit_code
        state.oom_killed = status.oom_killed
        state.error = status.error
        state.finished_at.CopyFrom(records.timestamp(status.finished_at or now_rfc3339()))
        record.exits += 1
        self._changed_state(record)

    async def _wait_task(self, container_id: str) -> ExitStatus:
        try:
            return await self.runtime.wait(container_id)
        except errors.KranError as err:
            return ExitStatus(255, finished_at=now_rfc3339(), error=f"the container's task is gone: {err}")

    async def _supervise(self, record: ContainerRecord, restart_now: bool = False) -> None:
        """Wait for the task's exit; record it, then restart (a new supervisor) or remove as policy says."""
        try:
            if not restart_now:
                status = await self._wait_task(record.id)
                async with record.lock:
                    if record.removed or record.state.status != "running":
                        return
                    ran_for = _ran_for(record.state)
                    # The exit first: attachers waiting for it then let go of the
                    # shim, which lingers for its clients before it ends.
                    self._set_exited(record, status)
                    await self._delete_task(record.id)
                    if record.removing:
                        return
                    if not restart.should_restart(record.config.restart_policy, status.exit_code,
                                                  record.state.restart_count, record.stopped_by_user):
                        if record.config.auto_remove:
                            await self._discard(record)
                        return
                    delay = self._backoffs.setdefault(record.id, restart.Backoff()).next(ran_for)
                    record.state.status = "restarting"
                    record.state.restart_count += 1
                    self._changed_state(record)
                log.info("restarting container", extra={"container": record.id, "delay": delay,
                                                        "exit_code": status.exit_code})
                if not await self._pause(record, delay):
                    return
            async with record.lock:
                if record.state.status == "restarting" and not record.removing:
                    with contextlib.suppress(errors.KranError):  # the failure is in the state
                        await self._run_task(record)
        finally:
            if self._supervisors.get(record.id) is asyncio.current_task():
                del self._supervisors[record.id]

    async def _pause(self, record: ContainerRecord, delay: float) -> bool:
        """Sleep before a restart; False when a stop or remove came meanwhile."""
        wakeup = self._wakeups[record.id] = asyncio.Event()
        try:
            await asyncio.wait_for(wakeup.wait(), delay)
        except asyncio.TimeoutError:
            return True
        finally:
            self._wakeups.pop(record.id, None)
        return False

    def _cancel_restart(self, record: ContainerRecord) -> None:
        """A restarting container a user stops stays exited (record.lock held)."""
        record.stopped_by_user = True
        record.state.status = "exited"
        self._changed_state(record)
        wakeup = self._wakeups.get(record.id)
        if wakeup is not None:
            wakeup.set()

    # -- stop, kill, restart --

    async def stop(self, ref: str, timeout: int | None = None, signal_name: str = "") -> ContainerRecord:
        """Send the stop signal, then SIGKILL after timeout seconds (-1: never); no error when stopped."""
        record = self.get(ref)
        async with record.lock:
            if record.state.status == "restarting":
                self._cancel_restart(record)
                if record.config.auto_remove:
                    await self._discard(record)
                return record
            if record.state.status != "running":
                return record
            sig = records.parse_signal(signal_name or record.config.stop_signal or "SIGTERM")
            record.stopped_by_user = True
            record.save()
            exits = record.exits
            with contextlib.suppress(errors.FailedPrecondition, errors.NotFound):
                await self.runtime.kill(record.id, sig)
        if timeout is None:
            timeout = record.config.stop_timeout or records.DEFAULT_STOP_TIMEOUT
        exited = lambda: record.exits > exits or record.removed  # noqa: E731
        if not await self.until(exited, record, None if timeout < 0 else timeout):
            with contextlib.suppress(errors.FailedPrecondition, errors.NotFound):
                await self.runtime.kill(record.id, signal.SIGKILL)
            await self.until(exited, record, KILL_WAIT)
        return record

    async def kill(self, ref: str, signal_name: str = "") -> ContainerRecord:
        """Send a signal (default SIGKILL); FailedPrecondition when the container is not running."""
        record = self.get(ref)
        sig = records.parse_signal(signal_name or "KILL")
        stopping = sig in (signal.SIGKILL, records.parse_signal(record.config.stop_signal or "SIGTERM"))
        async with record.lock:
            if record.state.status == "restarting" and stopping:
                self._cancel_restart(record)
                if record.config.auto_remove:
                    await self._discard(record)
                return record
            not_running = errors.FailedPrecondition(
                f"cannot kill container: {ref}: container {record.id} is not running")
            if record.state.status != "running":
                raise not_running
            if stopping:
                record.stopped_by_user = True
                record.save()
            exits = record.exits
            try:
                await self.runtime.kill(record.id, sig)
            except (errors.FailedPrecondition, errors.NotFound):
                raise not_running from None
        if sig == signal.SIGKILL:
            await self.until(lambda: record.exits > exits or record.removed, record, KILL_WAIT)
        return record

    async def restart(self, ref: str, timeout: int | None = None) -> ContainerRecord:
        """Stop (if running), then start."""
        record = await self.stop(ref, timeout)
        if record.removed:
            raise errors.NotFound(f"No such container: {ref}")
        return await self.start(record.id)

    # -- remove, rename, prune --

    async def remove(self, ref: str, force: bool = False) -> None:
        """Remove the container and everything it has on this node (force: kill it first)."""
        record = self.get(ref)
        async with record.lock:
            if record.removing:
                raise errors.FailedPrecondition(f"removal of container {ref} is already in progress")
            if record.running and not force:
                raise errors.FailedPrecondition(
                    f'cannot remove container "/{record.name}": container is {record.state.status}: '
                    "stop the container before removing or force remove")
            record.removing = True
            record.stopped_by_user = True
            if record.state.status == "restarting":
                self._cancel_restart(record)
            elif record.state.status == "running":
                with contextlib.suppress(errors.FailedPrecondition, errors.NotFound):
                    await self.runtime.kill(record.id, signal.SIGKILL)
        supervisor = self._supervisors.get(record.id)
        if supervisor is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(supervisor), KILL_WAIT)
        async with record.lock:
            await self._discard(record)

    async def _discard(self, record: ContainerRecord) -> None:
        """Delete the task, the container's directory and record (record.lock held); report removed."""
        if record.removed:
            return
        record.removing = True
        await self._delete_task(record.id)
        await asyncio.to_thread(shutil.rmtree, record.dir, ignore_errors=True)
        await asyncio.to_thread(self.store.release, record.id)
        self._records.pop(record.id, None)
        self._backoffs.pop(record.id, None)
        record.removed = True
        record.bump()
        self.report(nodes_pb2.ContainerReport(id=record.id, state=record.state, removed=True))
        self._notify(record)
        log.info("container removed", extra={"container": record.id, "container_name": record.name})

    async def rename(self, ref: str, name: str) -> ContainerRecord:
        """Give the container a new name (unique on this node)."""
        record = self.get(ref)
        new = records.valid_name(name)
        if new == record.name:
            raise errors.InvalidArgument("Renaming a container with the same name as its current name")
        self._check_name_free(new, keep=record)
        async with record.lock:
            record.name = new
            record.save()
        return record

    async def prune(self, keep: Callable[[ContainerRecord], bool] = lambda _r: False) -> tuple[list[str], int]:
        """Remove every container that does not run (unless keep(record)); (ids, bytes freed)."""
        deleted, freed = [], 0
        for record in list(self._records.values()):
            if record.running or record.removing or keep(record):
                continue
            size = await asyncio.to_thread(_disk_usage, record.upper)
            with contextlib.suppress(errors.NotFound, errors.FailedPrecondition):
                await self.remove(record.id)
                deleted.append(record.id)
                freed += size
        return deleted, freed

    # -- waiting --

    async def wait(self, ref: str, condition: str = "", registered: Callable[[], Awaitable[None]] | None = None
                   ) -> ContainerRecord:
        """Wait until the condition holds: not-running (default), next-exit or removed."""
        condition = condition or "not-running"
        if condition not in _WAIT_CONDITIONS:
            raise errors.InvalidArgument(f'invalid condition: "{condition}"')
        record = self.get(ref)
        exits = record.exits
        predicate = {"not-running": lambda: not record.running or record.removed,
                     "next-exit": lambda: record.exits > exits or record.removed,
                     "removed": lambda: record.removed}[condition]
        if registered is not None:
            await registered()
        await self.until(predicate, record)
        return record

    async def until(self, predicate: Callable[[], bool], record: ContainerRecord,
                     timeout: float | None = None) -> bool:
        """Wait until predicate() holds, re-checking at each change of the record; False on timeout."""
        async def watch() -> None:
            while not predicate():
                await self._changed.setdefault(record.id, asyncio.Event()).wait()
        try:
            await asyncio.wait_for(watch(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def _notify(self, record: ContainerRecord) -> None:
        changed = self._changed.pop(record.id, None)
        if changed is not None:
            changed.set()

    def _changed_state(self, record: ContainerRecord) -> None:
        """Bump, save and report the record's state, and wake its waiters."""
        record.bump()
        record.save()
        self.report(nodes_pb2.ContainerReport(id=record.id, state=record.state))
        self._notify(record)

    # -- agent start and stop --

    async def recover(self) -> None:
        """Load the records and re-adopt the live tasks; exits that happened meanwhile are recorded."""
        for record in records.load_all(self.root):
            self._records[record.id] = record
        # A crash between a hold and its container's record (or removal) leaves a stray hold.
        stray = await asyncio.to_thread(self.store.holders)
        await asyncio.to_thread(self.store.release, *(stray - set(self._records)))
        alive = set(self.runtime.recover())
        for container_id in self.runtime.list():
            record = self._records.get(container_id)
            if record is None or not record.running:
                await self._delete_task(container_id)
        for record in self._records.values():
            if record.state.status == "running":
                if record.id in alive:
                    log.info("re-adopted container", extra={"container": record.id})
                self._supervisors[record.id] = asyncio.create_task(self._supervise(record))
            elif record.state.status == "restarting":
                self._supervisors[record.id] = asyncio.create_task(self._supervise(record, restart_now=True))

    async def close(self) -> None:
        """Stop supervising (the containers keep running; a new agent re-adopts them)."""
        supervisors = list(self._supervisors.values())
        for task in supervisors:
            task.cancel()
        await asyncio.gather(*supervisors, return_exceptions=True)

    def counts(self) -> dict[str, int]:
        """How many containers are in each status."""
        counts: dict[str, int] = {}
        for record in self._records.values():
            counts[record.state.status] = counts.get(record.state.status, 0) + 1
        return counts


def _disk_usage(path: Path) -> int:
    total = 0
    for entry in path.rglob("*"):
        with contextlib.suppress(OSError):
            if entry.is_file() and not entry.is_symlink():
                total += entry.stat().st_size
    return total
