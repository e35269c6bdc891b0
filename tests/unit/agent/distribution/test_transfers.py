"""Shared transfers: one run per key, a limit on how many move at once, cancellation."""

from __future__ import annotations

import asyncio

from agent.distribution.transfers import Transfer, Transfers


def test_two_watchers_share_one_run_and_both_see_progress() -> None:
    async def scenario() -> tuple[int, list, list, list]:
        transfers = Transfers(3)
        runs = 0
        release = asyncio.Event()

        async def work(transfer: Transfer) -> str:
            nonlocal runs
            runs += 1
            transfer.emit("Downloading", 1, 2)
            await release.wait()
            transfer.emit("Download complete")
            return "done"
        first, second = [], []
        started: list = []
        one = asyncio.create_task(transfers.run("k", work, lambda *a: first.append(a), started))
        await asyncio.sleep(0.01)
        two = asyncio.create_task(transfers.run("k", work, lambda *a: second.append(a), started))
        await asyncio.sleep(0.01)
        release.set()
        results = await asyncio.gather(one, two)
        return runs, results, first, second + [len(started), transfers.running("k")]
    runs, results, first, second = asyncio.run(scenario())
    assert runs == 1 and results == ["done", "done"]
    assert first == [("Downloading", 1, 2), ("Download complete", 0, 0)]
    # The late watcher gets the last state at once, then what follows.
    assert second == [("Downloading", 1, 2), ("Download complete", 0, 0), 1, False]


def test_the_limit_makes_others_wait() -> None:
    async def scenario() -> list:
        transfers = Transfers(1)
        gate = asyncio.Event()
        seen: list = []

        async def slow(transfer: Transfer) -> None:
            await gate.wait()

        async def quick(transfer: Transfer) -> None:
            transfer.emit("Downloading")
        a = asyncio.create_task(transfers.run("a", slow, lambda *x: None))
        await asyncio.sleep(0.01)
        b = asyncio.create_task(transfers.run("b", quick, lambda *x: seen.append(x[0])))
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(a, b)
        return seen
    assert asyncio.run(scenario()) == ["Waiting", "Downloading"]


def test_a_transfer_nobody_watches_is_cancelled() -> None:
    async def scenario() -> bool:
        transfers = Transfers(2)
        stopped = asyncio.Event()

        async def work(transfer: Transfer) -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                stopped.set()
                raise
        watcher = asyncio.create_task(transfers.run("k", work, lambda *a: None))
        await asyncio.sleep(0.01)
        watcher.cancel()
        await asyncio.sleep(0.01)
        return stopped.is_set() and not transfers.running("k")
    assert asyncio.run(scenario())
