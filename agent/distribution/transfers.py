"""Transfers shared between operations on one node, a few at a time.

Two pulls that need the same layer fetch it once: the first starts a
Transfer keyed by what it fetches, a second joins it and sees the same
progress. A transfer runs while someone watches it; when every watcher has
gone (their pulls were cancelled) it is cancelled too. At most `limit`
transfers move bytes at once (--max-concurrent-downloads); the others
report "Waiting" until a slot frees.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from agent.distribution.progress import WAITING

Listener = Callable[[str, int, int], None]
"""Receives (status, current, total) as a transfer moves."""


class Transfer:
    """One running transfer: its task, its listeners and the last thing it reported."""

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None
        self.listeners: list[Listener] = []
        self.last: tuple[str, int, int] | None = None

    def emit(self, status: str, current: int = 0, total: int = 0) -> None:
        """Tell every watcher (and those who join later) where the transfer is."""
        self.last = (status, current, total)
        for listener in list(self.listeners):
            listener(status, current, total)


class Transfers:
    """Shared, limited transfers by key."""

    def __init__(self, limit: int) -> None:
        self.slots = asyncio.Semaphore(limit)
        self._running: dict[Hashable, Transfer] = {}

    def running(self, key: Hashable) -> bool:
        """Whether a transfer for `key` is under way."""
        return key in self._running

    async def run(self, key: Hashable, work: Callable[[Transfer], Awaitable[Any]], listener: Listener,
                  started: list[asyncio.Task[Any]] | None = None) -> Any:
        """Start (or join) the transfer for `key` and wait for its result.

        `work(transfer)` does the transfer holding a slot and reports through
        transfer.emit; only the caller that starts it runs `work`, and its
        task is appended to `started` (the starter must keep what `work`
        uses, such as its connection, until that task is done). Cancelling
        this call leaves the transfer to its other watchers.
        """
        transfer = self._running.get(key)
        if transfer is None:
            transfer = Transfer()
            transfer.task = asyncio.create_task(self._slotted(transfer, work))
            self._running[key] = transfer
            transfer.task.add_done_callback(lambda _, k=key, t=transfer: self._finished(k, t))
            if started is not None:
                started.append(transfer.task)
        assert transfer.task is not None
        transfer.listeners.append(listener)
        if transfer.last is not None:
            listener(*transfer.last)
        try:
            return await asyncio.shield(transfer.task)
        finally:
            transfer.listeners.remove(listener)
            if not transfer.listeners and not transfer.task.done():
                transfer.task.cancel()

    async def _slotted(self, transfer: Transfer, work: Callable[[Transfer], Awaitable[Any]]) -> Any:
        if self.slots.locked():
            transfer.emit(WAITING)
        async with self.slots:
            return await work(transfer)

    def _finished(self, key: Hashable, transfer: Transfer) -> None:
        if self._running.get(key) is transfer:
            del self._running[key]
        if not transfer.task.cancelled():  # nobody may await it: retrieve the error so none is logged
            transfer.task.exception()
