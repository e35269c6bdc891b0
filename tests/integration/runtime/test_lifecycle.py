"""Containers from create to delete: exit codes, exec failures, kill, OOM, nothing left behind."""

from __future__ import annotations

import asyncio
import json
import re
import signal

import pytest

from agent.runtime.runtime import ExecError, Runtime
from agent.runtime.state import Status
from kran import errors
from tests.integration.runtime.conftest import leftovers, run


async def _run(rt: Runtime, spec) -> int:
    await rt.create(spec)
    await rt.start(spec.id)
    return (await rt.wait(spec.id, timeout=20)).exit_code


def test_true_exits_zero(runtime, spec) -> None:
    container = spec("true")
    assert run(_run(runtime, container)) == 0
    state = runtime.state(container.id)
    assert state.status is Status.STOPPED and state.exit_code == 0
    assert state.started_at and state.finished_at >= state.started_at


def test_exit_code_is_kept(runtime, spec) -> None:
    assert run(_run(runtime, spec("sh", "-c", "exit 3"))) == 3


def test_missing_command_is_127_and_leaves_nothing(runtime, spec) -> None:
    container = spec("no-such-command")
    with pytest.raises(ExecError) as caught:
        run(runtime.create(container))
    assert caught.value.exit_code == 127
    assert str(caught.value) == 'exec: "no-such-command": executable file not found in $PATH'
    state = runtime.state(container.id)
    assert (state.status, state.exit_code) == (Status.STOPPED, 127)
    run(runtime.delete(container.id))
    assert leftovers(runtime, container.id, state.shim_pid) == []


def test_missing_absolute_path_is_127(runtime, spec) -> None:
    with pytest.raises(ExecError) as caught:
        run(runtime.create(spec("/nope")))
    assert caught.value.exit_code == 127
    assert str(caught.value) == 'exec: "/nope": stat /nope: no such file or directory'


def test_not_executable_is_126(runtime, spec) -> None:
    with pytest.raises(ExecError) as caught:
        run(runtime.create(spec("/etc/not-executable")))
    assert caught.value.exit_code == 126
    assert str(caught.value) == 'exec: "/etc/not-executable": permission denied'


def test_kill_sigkill_is_137(runtime, spec) -> None:
    async def scenario() -> int:
        container = spec("sleep", "100")
        await runtime.create(container)
        await runtime.start(container.id)
        assert runtime.state(container.id).status is Status.RUNNING
        await runtime.kill(container.id, signal.SIGKILL)
        return (await runtime.wait(container.id, timeout=10)).exit_code
    assert run(scenario()) == 137


def test_init_forwards_sigterm_143(runtime, spec) -> None:
    async def scenario() -> int:
        # Without --init, sleep would be pid 1 and the kernel would drop SIGTERM.
        container = spec("sleep", "100", init=True)
        await runtime.create(container)
        await runtime.start(container.id)
        await runtime.kill(container.id, signal.SIGTERM)
        return (await runtime.wait(container.id, timeout=10)).exit_code
    assert run(scenario()) == 143


def test_init_reaps_orphans(runtime, spec) -> None:
    container = spec("sh", "-c", "(sleep 0.1 &) ; sleep 0.5; ps -o stat,comm | grep -c '^Z' || true",
                     init=True)
    assert run(_run(runtime, container)) == 0
    logs = [json.loads(line)["log"] for line in runtime.log_path(container.id).read_text().splitlines()]
    assert logs == ["0\n"]


def test_oom_kill_is_recorded(runtime, spec) -> None:
    # busybox tail keeps the "last line" of /dev/zero in memory, which never ends.
    container = spec("tail", "/dev/zero", memory_limit=16 << 20)
    status = run(_run(runtime, container))
    state = runtime.state(container.id)
    assert status == 137 and state.oom_killed


def test_logs_are_json_lines_with_streams_apart(runtime, spec) -> None:
    container = spec("sh", "-c", "echo out; echo err >&2; printf partial")
    assert run(_run(runtime, container)) == 0
    records = [json.loads(line) for line in runtime.log_path(container.id).read_text().splitlines()]
    by_stream = {(r["stream"], r["log"]) for r in records}
    assert by_stream == {("stdout", "out\n"), ("stderr", "err\n"), ("stdout", "partial")}
    for record in records:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", record["time"])


def test_bad_requests_are_clear_errors(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("sleep", "100")
        await runtime.create(container)
        with pytest.raises(errors.AlreadyExists):
            await runtime.create(container)
        await runtime.start(container.id)
        with pytest.raises(errors.FailedPrecondition):
            await runtime.start(container.id)
        with pytest.raises(errors.FailedPrecondition):
            await runtime.delete(container.id)
        await runtime.kill(container.id, signal.SIGKILL)
        await runtime.wait(container.id, timeout=10)
        with pytest.raises(errors.FailedPrecondition):
            await runtime.kill(container.id, signal.SIGKILL)
        with pytest.raises(errors.NotFound):
            await runtime.delete("missing")
        with pytest.raises(errors.InvalidArgument):
            await runtime.create(spec("true", cwd="relative"))
        with pytest.raises(errors.InvalidArgument):
            await runtime.create(spec("true", memory_limit=1024))
        with pytest.raises(errors.InvalidArgument, match="unable to find user nosuchuser"):
            await runtime.create(spec("true", user="nosuchuser"))
    run(scenario())
    assert runtime.list() == [runtime.list()[0]]  # the invalid specs left no bundle


def test_delete_running_container_leaves_nothing(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("sleep", "100")
        await runtime.create(container)
        await runtime.start(container.id)
        state = runtime.state(container.id)
        assert cgroup_has(runtime, container.id, state.pid)
        await runtime.delete(container.id, force=True)
        assert leftovers(runtime, container.id, state.shim_pid) == []
        with pytest.raises(ProcessLookupError):
            import os
            os.kill(state.pid, 0)
    run(scenario())


def test_delete_created_container_leaves_nothing(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("true")
        await runtime.create(container)
        state = runtime.state(container.id)
        await runtime.delete(container.id)
        assert leftovers(runtime, container.id, state.shim_pid) == []
    run(scenario())


def cgroup_has(runtime: Runtime, container_id: str, pid: int) -> bool:
    from tests.integration.runtime.conftest import cgroup_dirs
    dirs = cgroup_dirs(runtime.cgroup_parent, container_id)
    return bool(dirs) and all(str(pid) in (d / "cgroup.procs").read_text().split() for d in dirs)


def test_concurrent_creates(runtime, spec) -> None:
    async def scenario() -> list[int]:
        containers = [spec("sh", "-c", f"exit {n}") for n in range(5)]
        return await asyncio.gather(*(_run(runtime, c) for c in containers))
    assert run(scenario()) == [0, 1, 2, 3, 4]
