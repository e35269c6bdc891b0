"""Container records, names and observed state against a real etcd."""

from __future__ import annotations

import asyncio
import logging

import pytest

from controller.containers import GONE, NAMES, RECORDS, STATES, ContainerStore, Record
from controller.store import EtcdStore
from kran import errors
from kran.api.v1 import containers_pb2, nodes_pb2
from tests.procs import Etcd

NODE = "n" * 25
OTHER = "o" * 25
CONFIG = containers_pb2.ContainerConfig(image="busybox", cmd=["sleep", "60"])



@pytest.fixture(autouse=True)
def log_everything(caplog: pytest.LogCaptureFixture) -> None:
    """Emit every log record, so a bad one (e.g. a reserved `extra` key) fails the test."""
    caplog.set_level(logging.DEBUG)

def with_store(etcd: Etcd, body):
    """Run body(containers) and remove every container key it left."""
    async def main():
        store = EtcdStore([etcd.endpoint])
        try:
            return await body(ContainerStore(store))
        finally:
            for prefix in (RECORDS, NAMES, STATES):
                for key in await store.keys(prefix):
                    await store.delete(key)
            await store.close()
    return asyncio.run(main())


def state(status: str, sequence: int, **fields: object) -> containers_pb2.ContainerState:
    return containers_pb2.ContainerState(status=status, sequence=sequence, **fields)


def report(record: Record, status: str = "", sequence: int = 0,
           removed: bool = False) -> nodes_pb2.ContainerReport:
    return nodes_pb2.ContainerReport(id=record.id, state=state(status, sequence), removed=removed)


def test_reserve_makes_an_id_and_a_name(etcd: Etcd) -> None:
    async def body(c: ContainerStore) -> None:
        record = await c.reserve("", NODE, CONFIG)
        assert len(record.id) == 64 and int(record.id, 16) >= 0
        assert "_" in record.name
        found = await c.resolve(record.name)
        assert found.id == record.id and found.node_id == NODE
        container = found.container()
        assert container.config == CONFIG and container.state.status == "created"
        assert container.created.seconds > 0
    with_store(etcd, body)


def test_a_taken_name_is_refused_with_dockers_message(etcd: Etcd) -> None:
    async def body(c: ContainerStore) -> None:
        first = await c.reserve("web", NODE, CONFIG)
        with pytest.raises(errors.AlreadyExists) as caught:
            await c.reserve("web", NODE, CONFIG)
        assert str(caught.value) == (
            f'Conflict. The container name "/web" is already in use by container "{first.id}". '
            "You have to remove (or rename) that container to be able to reuse that name.")
        assert len(await c.all()) == 1  # the loser left nothing behind
    with_store(etcd, body)


def test_concurrent_creates_with_one_name_have_one_winner(etcd: Etcd) -> None:
    async def body(c: ContainerStore) -> None:
        outcomes = await asyncio.gather(*(c.reserve("race", NODE, CONFIG) for _ in range(8)),
                                        return_exceptions=True)
        winners = [o for o in outcomes if isinstance(o, Record)]
        losers = [o for o in outcomes if isinstance(o, errors.AlreadyExists)]
        assert len(winners) == 1 and len(losers) == 7
        assert [x.id for x in await c.all()] == [winners[0].id]
        assert (await c.resolve("race")).id == winners[0].id
    with_store(etcd, body)


def test_resolve_by_id_prefix_and_name(etcd: Etcd) -> None:
    async def body(c: ContainerStore) -> None:
        one = await c.reserve("one", NODE, CONFIG)
        two = await c.reserve("two", NODE, CONFIG)
        assert (await c.resolve(one.id)).name == "one"
        assert (await c.resolve(one.id[:12])).name == "one"
        assert (await c.resolve("/two")).id == two.id
        # 17 ids: at least two share their first hex digit.
        more = [await c.reserve("", NODE, CONFIG) for _ in range(15)]
        firsts = [r.id[0] for r in [one, two, *more]]
        shared = next(digit for digit in firsts if firsts.count(digit) > 1)
        with pytest.raises(errors.InvalidArgument) as caught:
            await c.resolve(shared)
        assert str(caught.value) == f"multiple containers found with provided prefix: {shared}"
        for unknown in ("three", "f" * 64, "zz"):
            with pytest.raises(errors.NotFound) as caught:
                await c.resolve(unknown)
            assert str(caught.value) == f"No such container: {unknown}"
        with pytest.raises(errors.InvalidArgument):
            await c.resolve("")
    with_store(etcd, body)


def test_a_name_wins_over_an_id_prefix(etcd: Etcd) -> None:
    async def body(c: ContainerStore) -> None:
        target = await c.reserve("", NODE, CONFIG)
        named = await c.reserve(target.id[:6], NODE, CONFIG)
        assert (await c.resolve(target.id[:6])).id == named.id
        assert (await c.resolve(target.id[:7])).id == target.id
    with_store(etcd, body)


def test_states_only_move_forward(etcd: Etcd) -> None:
    async def body(c: ContainerStore) -> None:
        record = await c.reserve("s", NODE, CONFIG)
        assert await c.write_state(record.id, NODE, state("running", 2, pid=7))
        assert not await c.write_state(record.id, NODE, state("created", 1))
        assert not await c.write_state(record.id, NODE, state("exited", 2))
        assert (await c.state(record.id)).status == "running"
        assert await c.write_state(record.id, NODE, state("exited", 3, exit_code=1))
        assert (await c.state(record.id)).exit_code == 1
        # Only the container's own node reports for it; unknown ids are ignored.
        assert not await c.write_state(record.id, OTHER, state("dead", 9))
        assert not await c.write_state("e" * 64, NODE, state("running", 1))
        assert await c.state("e" * 64) is None
    with_store(etcd, body)


def test_concurrent_reports_keep_the_newest(etcd: Etcd) -> None:
    async def body(c: ContainerStore) -> None:
        record = await c.reserve("busy", NODE, CONFIG)
        sequences = list(range(1, 41))
        sequences.reverse()
        await asyncio.gather(*(c.write_state(record.id, NODE, state("running", n, pid=n))
                               for n in sequences))
        assert (await c.state(record.id)).sequence == 40
    with_store(etcd, body)


def test_store_created_keeps_the_agents_view(etcd: Etcd) -> None:
    async def body(c: ContainerStore) -> None:
        record = await c.reserve("eff", NODE, CONFIG)
        effective = containers_pb2.Container(
            id=record.id, image_id="sha256:" + "9" * 64, path="sleep", args=["60"],
            config=containers_pb2.ContainerConfig(image="busybox", cmd=["sleep", "60"],
                                                  env=["PATH=/bin"]),
            state=state("created", 1))
        effective.created.FromJsonString("2024-05-06T07:08:09.123456Z")
        await c.store_created(record, effective)
        shown = (await c.resolve("eff")).container(await c.state(record.id))
        assert shown.image_id == effective.image_id and shown.path == "sleep"
        assert list(shown.config.env) == ["PATH=/bin"] and shown.state.sequence == 1
        assert shown.created.ToJsonString() == "2024-05-06T07:08:09.123456Z"
        assert shown.name == "eff" and shown.node_id == NODE
    with_store(etcd, body)


def test_rename_moves_the_name(etcd: Etcd) -> None:
    # Names that are not hex digits, so none can resolve as a prefix of the random ids.
    async def body(c: ContainerStore) -> None:
        a = await c.reserve("web1", NODE, CONFIG)
        b = await c.reserve("cache1", NODE, CONFIG)
        renamed = await c.rename(a, "web2")
        assert renamed.name == "web2" and (await c.resolve("web2")).id == a.id
        with pytest.raises(errors.NotFound):
            await c.resolve("web1")
        with pytest.raises(errors.AlreadyExists, match=f'in use by container "{b.id}"'):
            await c.rename(renamed, "cache1")
        assert (await c.resolve("web2")).id == a.id and (await c.resolve("cache1")).id == b.id
        await c.reserve("web1", NODE, CONFIG)  # the old name is free again
    with_store(etcd, body)


def test_forget_deletes_record_name_and_state(etcd: Etcd) -> None:
    async def body(c: ContainerStore) -> None:
        record = await c.reserve("gone", NODE, CONFIG)
        await c.write_state(record.id, NODE, state("exited", 4))
        assert await c.forget(record.id)
        assert await c.all() == [] and await c.state(record.id) is None
        assert not await c.forget(record.id)
        await c.reserve("gone", NODE, CONFIG)
    with_store(etcd, body)


def test_reports_write_remove_and_mark_the_gone(etcd: Etcd) -> None:
    async def body(c: ContainerStore) -> None:
        kept = await c.reserve("kept", NODE, CONFIG)
        auto = await c.reserve("auto", NODE, CONFIG)
        lost = await c.reserve("lost", NODE, CONFIG)
        elsewhere = await c.reserve("elsewhere", OTHER, CONFIG)
        await c.write_state(lost.id, NODE, state("running", 5, pid=9))
        await c.apply_reports(NODE, [report(kept, "running", 3), report(auto, removed=True)],
                              full=False)
        assert (await c.state(kept.id)).status == "running"
        with pytest.raises(errors.NotFound):
            await c.resolve("auto")
        # A full report: what the node no longer has is dead, not deleted.
        unknown = nodes_pb2.ContainerReport(id="d" * 64, state=state("running", 1))
        await c.apply_reports(NODE, [report(kept, "exited", 4), unknown], full=True)
        gone = await c.state(lost.id)
        assert (gone.status, gone.error, gone.pid, gone.sequence) == ("dead", GONE, 0, 5)
        assert (await c.state(kept.id)).status == "exited"
        assert await c.state(elsewhere.id) is None  # another node's container is untouched
        assert await c.state("d" * 64) is None
        assert {x.name for x in await c.all()} == {"kept", "lost", "elsewhere"}
        # The node's agent still wins with a newer state.
        await c.apply_reports(NODE, [report(lost, "exited", 6)], full=False)
        assert (await c.state(lost.id)).status == "exited"
        counts = await c.count_by_status()
        assert counts == {"exited": 2, "created": 1}
    with_store(etcd, body)


def test_a_large_full_report(etcd: Etcd) -> None:
    async def body(c: ContainerStore) -> None:
        records = await asyncio.gather(*(c.reserve("", NODE, CONFIG) for _ in range(100)))
        await c.apply_reports(NODE, [report(r, "running", 1) for r in records], full=True)
        assert (await c.count_by_status()) == {"running": 100}
        await c.apply_reports(NODE, [report(r, "running", 1) for r in records[:50]], full=True)
        assert (await c.count_by_status()) == {"running": 50, "dead": 50}
    with_store(etcd, body)
