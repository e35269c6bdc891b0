"""Leader election over a real etcd (controller.leader)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from controller import config
from controller.leader import KEY, Leadership, current_leader, identity_for
from controller.store import EtcdStore
from kran import errors
from tests.procs import Etcd, Processes


class Candidate:
    """A Leadership whose work records when it runs and when it is cancelled."""

    def __init__(self, store: EtcdStore, identity: str, ttl: int = 2) -> None:
        self.leadership = Leadership(store, identity, ttl)
        self.terms = 0
        self.leading = asyncio.Event()
        self.cancelled_at = 0.0
        self.task: asyncio.Task[None] | None = None

    async def work(self) -> None:
        self.terms += 1
        self.leading.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.leading.clear()
            self.cancelled_at = time.monotonic()

    def start(self) -> None:
        self.task = asyncio.create_task(self.leadership.run(self.work))

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def run(body, endpoint: str):
    async def main():
        store = EtcdStore([endpoint])
        try:
            with contextlib.suppress(errors.KranError):
                await store.delete(KEY)
            return await body(store)
        finally:
            await store.close()
    return asyncio.run(main())


def test_one_leader_and_a_fast_handover_on_resign(etcd: Etcd) -> None:
    async def body(store: EtcdStore) -> None:
        first, second = Candidate(store, "c1:7640"), Candidate(store, "c2:7640")
        first.start()
        await until(first.leading.is_set, 5, "the first candidate to lead")
        second.start()
        await asyncio.sleep(0.5)
        assert not second.leading.is_set() and first.leadership.is_leader
        assert not second.leadership.is_leader
        assert await current_leader(store) == "c1:7640"
        stopped = time.monotonic()
        await first.stop()
        await until(second.leading.is_set, 5, "the second candidate to lead")
        assert time.monotonic() - stopped < 1.5  # resigning revokes the lease: no TTL wait
        assert await current_leader(store) == "c2:7640"
        await second.stop()
        assert await current_leader(store) == ""
    run(body, etcd.endpoint)


def test_a_leader_whose_key_is_lost_stops_at_once(etcd: Etcd) -> None:
    async def body(store: EtcdStore) -> None:
        candidate = Candidate(store, "c1:7640")
        candidate.start()
        await until(candidate.leading.is_set, 5, "the candidate to lead")
        fence = candidate.leadership.fence
        entry = await store.get(KEY)
        await store.revoke_lease(entry.lease)
        revoked = time.monotonic()
        # Nobody else campaigns, so it is elected again at once.
        await until(lambda: candidate.terms == 2, 5, "the candidate to lead again")
        assert 0 < candidate.cancelled_at - revoked < 1.5
        assert candidate.leadership.fence != fence
        await candidate.stop()
    run(body, etcd.endpoint)


def test_a_leader_cut_off_from_etcd_cancels_its_work_within_the_ttl() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="kran-leader-"))
    group = Processes(workdir)
    try:
        member = group.etcd(workdir / "data")

        async def body(store: EtcdStore) -> None:
            candidate = Candidate(store, "c1:7640", ttl=2)
            candidate.start()
            await until(candidate.leading.is_set, 5, "the candidate to lead")
            member.kill()
            killed = time.monotonic()
            await until(lambda: not candidate.leading.is_set(), 4, "the work to be cancelled")
            assert candidate.cancelled_at - killed <= 2.0  # before the lease can expire
            assert not candidate.leadership.is_leader
            with pytest.raises(errors.FailedPrecondition, match="not the leader"):
                candidate.leadership.fence  # noqa: B018 - the property raises
            await candidate.stop()
        run(body, member.endpoint)
    finally:
        group.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def test_identity() -> None:
    assert identity_for("10.0.0.1:7650") == "10.0.0.1:7650"
    assert identity_for("0.0.0.0:7640").endswith(":7640")
    assert not identity_for("0.0.0.0:7640").startswith("0.0.0.0")
    with pytest.raises(errors.InvalidArgument):
        Leadership(None, "x", ttl=1)  # type: ignore[arg-type]


def test_the_leader_ttl_flag() -> None:
    assert config.parse(["--etcd", "127.0.0.1:2379"]).leader_ttl == 3
    assert config.parse(["--etcd", "127.0.0.1:2379", "--leader-ttl", "5"]).leader_ttl == 5
    with pytest.raises(errors.InvalidArgument, match="--leader-ttl must be at least 2 seconds"):
        config.parse(["--leader-ttl", "1"])
