"""Exec into running containers: namespaces, cgroup, env, user, cwd, stdio, terminal, exit codes."""

from __future__ import annotations

import asyncio
import os

import pytest

from agent.runtime import wire
from agent.runtime.runtime import ExecError, Runtime
from agent.runtime.spec import ExecSpec
from kran import errors
from tests.integration.runtime.conftest import run


async def _running(rt: Runtime, container) -> None:
    await rt.create(container)
    await rt.start(container.id)


async def _output(session) -> tuple[bytes, bytes]:
    out, err = b"", b""
    while (chunk := await session.read()) is not None:
        if chunk[0] == wire.STDOUT:
            out += chunk[1]
        else:
            err += chunk[1]
    return out, err


async def _exec(rt: Runtime, container_id: str, *args: str, **kwargs) -> tuple[int, bytes, bytes]:
    session = await rt.exec(container_id, ExecSpec(list(args), **kwargs))
    out, err = await _output(session)
    status = await session.wait()
    return status.exit_code, out, err


def test_exec_runs_inside_the_container(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("sleep", "100", hostname="box", env=["FROM_CONTAINER=1"])
        await _running(runtime, container)
        init_pid = runtime.state(container.id).pid
        code, out, err = await _exec(runtime, container.id, "sh", "-c",
                                     "hostname; echo $$; echo $FROM_CONTAINER $EXTRA; pwd; ps | wc -l; "
                                     "cat /proc/self/status | grep -E '^(NoNewPrivs|CapEff)'; echo oops >&2; exit 3",
                                     env=["EXTRA=2"], cwd="/tmp")
        assert code == 3
        lines = out.decode().splitlines()
        assert lines[0] == "box"
        assert int(lines[1]) > 1            # a pid in the container's namespace, not the host's
        assert lines[2] == "1 2"
        assert lines[3] == "/tmp"
        assert lines[5].split() == ["CapEff:", "00000000a80425fb"]
        assert lines[6].split() == ["NoNewPrivs:", "1"]
        assert err == b"oops\n"
        # Same namespaces as the init; the exec was in the container's cgroup.
        for ns in ("mnt", "net", "uts", "ipc", "pid"):
            assert os.readlink(f"/proc/{init_pid}/ns/{ns}")
        await runtime.kill(container.id, 9)
        await runtime.wait(container.id, timeout=10)
    run(scenario())


def test_exec_joins_the_cgroup_and_pid_namespace(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("sleep", "100")
        await _running(runtime, container)
        init_pid = runtime.state(container.id).pid
        session = await runtime.exec(container.id, ExecSpec(["sleep", "30"]))
        host_pid = session.pid
        with open(f"/proc/{host_pid}/cgroup") as f:
            assert f"/{runtime.cgroup_parent}/{container.id}" in f.read()
        for ns in ("mnt", "net", "uts", "ipc", "pid"):
            assert os.readlink(f"/proc/{host_pid}/ns/{ns}") == os.readlink(f"/proc/{init_pid}/ns/{ns}")
        # Stopping the container ends the exec too, and the session hears of it.
        await runtime.kill(container.id, 9)
        status = await session.wait()
        assert status.exit_code == 137
        await runtime.wait(container.id, timeout=10)
    run(scenario())


def test_exec_user_from_the_container_passwd(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("sleep", "100")
        await _running(runtime, container)
        code, out, _ = await _exec(runtime, container.id, "sh", "-c", "id -u; id -g; echo $HOME", user="nobody")
        assert (code, out) == (0, b"65534\n65534\n/nonexistent\n")
        code, out, _ = await _exec(runtime, container.id, "id", "-u", user="1:1")
        assert (code, out) == (0, b"1\n")
        code, out, _ = await _exec(runtime, container.id, "sh", "-c", "id -u; echo $HOME")
        assert (code, out) == (0, b"0\n/root\n")
        with pytest.raises(ExecError) as caught:
            await runtime.exec(container.id, ExecSpec(["true"], user="nosuch"))
        assert caught.value.exit_code == 126
        assert str(caught.value) == ("OCI runtime exec failed: exec failed: unable to start container process: "
                                     "unable to find user nosuch: no matching entries in passwd file: unknown")
        await runtime.kill(container.id, 9)
    run(scenario())


@pytest.mark.parametrize("args, cwd, code, reason", [
    (["nosuch"], "", 127, 'exec: "nosuch": executable file not found in $PATH'),
    (["/bin/nosuch"], "", 127, 'exec: "/bin/nosuch": stat /bin/nosuch: no such file or directory'),
    (["/etc/not-executable"], "", 126, 'exec: "/etc/not-executable": permission denied'),
    (["true"], "/nowhere", 127, 'chdir to cwd ("/nowhere") set in config.json failed: no such file or directory'),
])
def test_exec_failures_have_dockers_words_and_codes(runtime, spec, args, cwd, code, reason) -> None:
    async def scenario() -> None:
        container = spec("sleep", "100")
        await _running(runtime, container)
        with pytest.raises(ExecError) as caught:
            await runtime.exec(container.id, ExecSpec(args, cwd=cwd))
        assert caught.value.exit_code == code
        assert str(caught.value) == f"OCI runtime exec failed: exec failed: unable to start container process: {reason}: unknown"
        # The container is unharmed and another exec works.
        assert (await _exec(runtime, container.id, "true"))[0] == 0
        await runtime.kill(container.id, 9)
    run(scenario())


def test_exec_stdin_and_close(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("sleep", "100")
        await _running(runtime, container)
        session = await runtime.exec(container.id, ExecSpec(["sh", "-c", "cat; echo done"], stdin=True))
        await session.write(b"one\ntwo\n")
        await session.close_stdin()
        out, _ = await _output(session)
        assert out == b"one\ntwo\ndone\n"
        assert (await session.wait()).exit_code == 0
        await runtime.kill(container.id, 9)
    run(scenario())


def test_exec_terminal_with_size_and_resize(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("sleep", "100")
        await _running(runtime, container)
        session = await runtime.exec(container.id, ExecSpec(["sh"], tty=True, stdin=True, size=(24, 80)))
        await session.write(b"tty; stty size; echo $TERM\n")
        seen = b""
        while b"xterm" not in seen:
            stream, data = await session.read()
            assert stream == wire.STDOUT
            seen += data
        assert b"/dev/pts/" in seen and b"24 80" in seen
        await session.resize(30, 100)
        await session.write(b"stty size; exit 5\n")
        while (chunk := await session.read()) is not None:
            seen += chunk[1]
        assert b"30 100" in seen
        assert session.exit_code == 5
        await runtime.kill(container.id, 9)
    run(scenario())


def test_detached_exec_gives_the_pid(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("sleep", "100")
        await _running(runtime, container)
        session = await runtime.exec(container.id, ExecSpec(["sh", "-c", "echo hi > /tmp/mark; sleep 30"],
                                                             detach=True))
        assert session.pid > 0 and await session.read() is None
        for _ in range(100):
            code, out, _ = await _exec(runtime, container.id, "cat", "/tmp/mark")
            if code == 0:
                break
            await asyncio.sleep(0.05)
        assert out == b"hi\n"
        await runtime.kill(container.id, 9)
        await runtime.wait(container.id, timeout=10)
    run(scenario())


def test_exec_in_a_stopped_or_created_container_is_refused(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("true")
        await runtime.create(container)
        with pytest.raises(errors.FailedPrecondition, match=f"container {container.id} is not running"):
            await runtime.exec(container.id, ExecSpec(["true"]))
        await runtime.start(container.id)
        await runtime.wait(container.id, timeout=10)
        with pytest.raises(errors.FailedPrecondition, match="is not running"):
            await runtime.exec(container.id, ExecSpec(["true"]))
        with pytest.raises(errors.InvalidArgument):
            await runtime.exec(container.id, ExecSpec([]))
    run(scenario())


def test_exec_output_stays_out_of_the_container_log(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("sh", "-c", "echo from-init; sleep 100")
        await _running(runtime, container)
        assert (await _exec(runtime, container.id, "echo", "from-exec"))[1] == b"from-exec\n"
        await runtime.kill(container.id, 9)
        await runtime.wait(container.id, timeout=10)
        log = runtime.log_path(container.id).read_text()
        assert "from-init" in log and "from-exec" not in log
    run(scenario())


def test_exit_arrives_while_the_client_still_sends(runtime, spec) -> None:
    """Input the shim no longer reads must not cost the client the exit frame (ECONNRESET)."""
    async def scenario() -> None:
        container = spec("sleep", "100")
        await _running(runtime, container)
        for _ in range(10):
            session = await runtime.exec(container.id, ExecSpec(["sh", "-c", "read line; exit 3"], stdin=True))

            async def flood() -> None:
                await session.write(b"go\n")
                for _ in range(200):
                    await session.write(b"x" * 1024)

            sender = asyncio.create_task(flood())
            status = await session.wait()
            await sender
            assert status.exit_code == 3, status
        await runtime.kill(container.id, 9)
    run(scenario())
