"""The forkserver stays free of grpc, and its shims are their own session and process group."""

from __future__ import annotations

import os
from pathlib import Path

from agent.runtime.forkserver import ForkServer
from tests.integration.runtime.conftest import run


def test_forkserver_never_loads_grpc(forkserver: ForkServer) -> None:
    maps = Path(f"/proc/{forkserver.pid}/maps").read_text()
    assert "grpc" not in maps
    assert Path(f"/proc/{forkserver.pid}/comm").read_text().strip() == "kran-forkserver"


def test_shim_is_a_subreaper_in_its_own_session(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("sleep", "100")
        await runtime.create(container)
        shim = runtime.state(container.id).shim_pid
        assert os.getsid(shim) != os.getsid(0) and os.getpgid(shim) == shim
        assert Path(f"/proc/{shim}/comm").read_text().strip() == "kran-shim"
        assert "grpc" not in Path(f"/proc/{shim}/maps").read_text()
        await runtime.delete(container.id)
    run(scenario())
