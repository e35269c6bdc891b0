"""A kran gRPC server in a thread of its own, for tests that call it from synchronous code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from kran.server import Registration, start_server
from tests.procs import free_port


@contextmanager
def serving(services: list[Registration]) -> Iterator[str]:
    """Serve `services` with kran.server on a free loopback port; yields its host:port."""
    address = f"127.0.0.1:{free_port()}"
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stopping = asyncio.Event()

    async def serve() -> None:
        server = await start_server(address, services)
        started.set()
        await stopping.wait()
        await server.stop(None)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10), "the test server did not start"
    try:
        yield address
    finally:
        loop.call_soon_threadsafe(stopping.set)
        thread.join(10)
        assert not thread.is_alive()
        loop.close()
