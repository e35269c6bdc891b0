"""Shims outlive the agent: SIGKILL the forkserver, then a new Runtime finds its containers."""

from __future__ import annotations

import signal

from agent.runtime.forkserver import ForkServer
from agent.runtime.runtime import Runtime
from agent.runtime.state import Status
from tests.integration.runtime.conftest import cgroup_dirs, leftovers, run


def test_shims_survive_and_are_readopted(spec, tmp_path) -> None:
    state_dir = tmp_path / "state"
    old_server = ForkServer.start()
    old = Runtime(state_dir, old_server, cgroup_parent="kran-test-recover")
    long, short = spec("sleep", "100"), spec("sh", "-c", "sleep 0.3; echo bye; exit 5")

    async def before() -> None:
        for container in (long, short):
            await old.create(container)
            await old.start(container.id)
    run(before())
    old_server.process.send_signal(signal.SIGKILL)  # the agent "crashes"
    old_server.process.wait()

    new_server = ForkServer.start()
    try:
        new = Runtime(state_dir, new_server, cgroup_parent="kran-test-recover")

        async def after() -> None:
            status = await new.wait(short.id, timeout=10)  # exited with no agent around
            assert status.exit_code == 5 and status.finished_at
            assert new.recover() == [long.id]
            assert new.state(long.id).status is Status.RUNNING
            await new.kill(long.id, signal.SIGKILL)
            assert (await new.wait(long.id, timeout=10)).exit_code == 137
            for container in (long, short):
                shim_pid = new.state(container.id).shim_pid
                await new.delete(container.id)
                assert leftovers(new, container.id, shim_pid) == []
        run(after())
    finally:
        new_server.stop()
        for path in cgroup_dirs("kran-test-recover"):
            path.rmdir()
