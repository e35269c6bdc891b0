"""Scheduler.place/release against a real etcd and toy agents."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest

from controller.scheduler import Placed, Scheduler, Unschedulable
from controller.scheduler.allocations import key as allocation_key
from kran import errors
from tests.procs import Etcd
from tests.unit.controller.scheduler.world import GIB, World, request, with_world


def hosts(world: World, results: list) -> list[str]:
    assert all(isinstance(r, Placed) for r in results), results
    return [r.node.hostname for r in results]


async def three(world: World) -> None:
    for name in ("h1", "h2", "h3"):
        await world.node(name)


def test_spread_places_evenly_and_reserves_in_etcd(etcd: Etcd) -> None:
    async def body(w: World) -> None:
        await three(w)
        s = w.scheduler()
        placed = await s.place([request(f"c{i}", image="busybox") for i in range(6)])
        assert hosts(w, placed) == ["h1", "h2", "h3", "h1", "h2", "h3"]
        stored = await w.store.get(allocation_key(w.ids["h1"]))
        assert set(stored.value["containers"]) == {"c0", "c3"}
        # One question per node for the one image of the batch.
        assert all(agent.asked == ["busybox"] for agent in w.agents.values())
        more = await s.place([request("c6")])
        assert hosts(w, more) == ["h1"]
        allocation = await s.allocation(w.ids["h1"])
        assert allocation.containers == 3
    with_world(etcd, body)


def test_spread_counts_the_group_first(etcd: Etcd) -> None:
    async def body(w: World) -> None:
        await three(w)
        s = w.scheduler()
        await s.place([request("a"), request("b")])            # h1, h2 hold one each
        placed = await s.place([request(f"t{i}", spread_key="svc") for i in range(3)])
        assert sorted(hosts(w, placed)) == ["h1", "h2", "h3"]
    with_world(etcd, body)


def test_binpack_fills_the_most_reserved_node_that_fits(etcd: Etcd) -> None:
    async def body(w: World) -> None:
        await three(w)
        s = w.scheduler("binpack")
        placed = await s.place([request(f"c{i}", cpus=1.5) for i in range(5)])
        assert hosts(w, placed) == ["h1", "h1", "h2", "h2", "h3"]
        small = await s.place([request("small", cpus=1)])
        assert hosts(w, small) == ["h1"]   # 3 of 4 reserved: the fullest that fits
    with_world(etcd, body)


def test_random_and_per_request_strategy(etcd: Etcd) -> None:
    async def body(w: World) -> None:
        await three(w)
        s = w.scheduler("binpack")
        placed = await s.place([request(f"r{i}", strategy="random") for i in range(60)])
        spread = Counter(hosts(w, placed))
        assert set(spread) == {"h1", "h2", "h3"}
        bad = await s.place([request("x", strategy="fastest")])
        assert isinstance(bad[0], errors.InvalidArgument)
        assert "invalid placement strategy 'fastest'" in str(bad[0])
        with pytest.raises(errors.InvalidArgument):
            Scheduler(w.store, w.registry, w.pool, "fastest")
    with_world(etcd, body)


def test_constraints_and_labels(etcd: Etcd) -> None:
    async def body(w: World) -> None:
        await three(w)
        await w.set("h3", labels={"zone": "b"})
        s = w.scheduler()
        on_h2 = await s.place([request(f"a{i}", "node.hostname==h2") for i in range(3)])
        assert hosts(w, on_h2) == ["h2", "h2", "h2"]
        in_b = await s.place([request("b", "node.labels.zone==B")])
        assert hosts(w, in_b) == ["h3"]
        not_b = await s.place([request(f"n{i}", "node.labels.zone!=b") for i in range(2)])
        assert hosts(w, not_b) == ["h1", "h1"]
        nowhere = await s.place([request("z", "node.labels.zone==x")])
        assert isinstance(nowhere[0], Unschedulable)
        assert str(nowhere[0]) == "no node satisfies node.labels.zone==x: 3 nodes, 0 match"
        bad = await s.place([request("q", "node.zone=a")])
        assert isinstance(bad[0], errors.InvalidArgument)
    with_world(etcd, body)


def test_ready_active_and_pins(etcd: Etcd) -> None:
    async def body(w: World) -> None:
        await three(w)
        await w.down("h1")
        await w.set("h2", availability="PAUSE")
        s = w.scheduler()
        placed = await s.place([request(f"c{i}") for i in range(3)])
        assert hosts(w, placed) == ["h3", "h3", "h3"]
        await w.set("h3", availability="DRAIN")
        none = await s.place([request("x")])
        assert str(none[0]) == ("no node is active (the others are paused or drained): "
                                "2 nodes, 0 match")
        pinned_down = await s.place([request("p", pinned="h1")])
        assert str(pinned_down[0]) == f"node h1 ({w.ids['h1']}) is down"
        pinned_paused = await s.place([request("p", pinned="h2")])
        assert str(pinned_paused[0]) == f"node h2 ({w.ids['h2']}) is paused"
        unknown = await s.place([request("p", pinned="h9")])
        assert isinstance(unknown[0], errors.NotFound)
        await w.set("h2", availability="ACTIVE")
        pinned = await s.place([request("p", pinned=w.ids["h2"][:4])])
        assert hosts(w, pinned) == ["h2"]
    with_world(etcd, body)


def test_resources_limits_and_ports(etcd: Etcd) -> None:
    async def body(w: World) -> None:
        await three(w)
        s = w.scheduler()
        big = await s.place([request("big", cpus=5)])
        assert str(big[0]) == "no node has 5 CPUs free to reserve: 3 nodes, 0 match"
        memory = await s.place([request("m", memory=9 * GIB)])
        assert str(memory[0]) == ("no node has 9GiB of memory free to reserve: "
                                  "3 nodes, 0 match")
        limit = await s.place([request("l", nano_cpus_limit=8_000_000_000)])
        assert str(limit[0]) == "no node has 8 CPUs for the limit: 3 nodes, 0 match"
        # Four 3-CPU reservations on three 4-CPU nodes: the fourth fits nowhere.
        batch = await s.place([request(f"r{i}", cpus=3) for i in range(4)])
        assert sorted(hosts(w, batch[:3])) == ["h1", "h2", "h3"]
        assert str(batch[3]) == "no node has 3 CPUs free to reserve: 3 nodes, 0 match"
        await s.release(w.ids["h2"], ["r1"])
        await s.release(w.ids["h2"], ["r1"])   # idempotent
        again = await s.place([request("r4", cpus=3)])
        assert hosts(w, again) == ["h2"]
        ports = await s.place([request(f"p{i}", ports=("8080/tcp",)) for i in range(4)])
        assert sorted(hosts(w, ports[:3])) == ["h1", "h2", "h3"]
        assert str(ports[3]) == "no node has host port 8080/tcp free: 3 nodes, 0 match"
        pinned = await s.place([request("pp", ports=("8080/tcp",), pinned="h1")])
        assert str(pinned[0]) == f"node h1 ({w.ids['h1']}) already publishes host port 8080/tcp"
        other = await s.place([request("udp", ports=("8080/udp",), pinned="h1")])
        assert hosts(w, other) == ["h1"]
        allocation = await s.allocation(w.ids["h1"])
        assert allocation.ports == ["8080/tcp", "8080/udp"]
        assert allocation.nano_cpus == 3_000_000_000
    with_world(etcd, body)


def test_images(etcd: Etcd) -> None:
    async def body(w: World) -> None:
        await w.node("h1", images={"busybox", "redis"})
        await w.node("h2", images={"busybox"})
        await w.node("h3", images=set(), broken=True)
        s = w.scheduler()
        redis = await s.place([request(f"r{i}", image="redis") for i in range(2)])
        assert hosts(w, redis) == ["h1", "h1"]
        # A yes is remembered, a no is asked again.
        assert hosts(w, await s.place([request("r2", image="redis")])) == ["h1"]
        assert (w.agents["h1"].asked, w.agents["h2"].asked) == (["redis"], ["redis", "redis"])
        s.images.forget(w.ids["h1"], "redis")
        assert hosts(w, await s.place([request("r3", image="redis")])) == ["h1"]
        assert w.agents["h1"].asked == ["redis", "redis"]
        missing = await s.place([request("n", image="nginx")])
        assert isinstance(missing[0], Unschedulable)  # h3 could not say
        assert str(missing[0]).startswith("no node has image nginx:latest: 3 nodes, 0 match; h3: ")
        await w.down("h3")
        missing = await s.place([request("n", image="nginx")])
        assert isinstance(missing[0], errors.NotFound)
        assert str(missing[0]) == "No such image: nginx:latest"
        # Another kind of the batch finding the image elsewhere makes it unschedulable.
        mixed = await s.place([request("a", "node.hostname==h2", image="redis"),
                               request("b", image="redis")])
        assert str(mixed[0]) == "no node has image redis:latest: 1 node, 0 match"
        assert hosts(w, mixed[1:]) == ["h1"]
    with_world(etcd, body)


def test_an_aging_yes_is_used_while_the_node_is_asked_again(etcd: Etcd) -> None:
    async def body(w: World) -> None:
        await w.node("h1", images={"busybox"})
        s = w.scheduler()
        s.images.remember = 0.0            # every yes is aging at once; still within `stale`
        assert hosts(w, await s.place([request("a", image="busybox")])) == ["h1"]
        assert w.agents["h1"].asked == ["busybox"]
        w.agents["h1"].refs.clear()        # the image went away meanwhile
        # The placement does not wait for the question: the old yes places it...
        assert hosts(w, await s.place([request("b", image="busybox")])) == ["h1"]
        await asyncio.sleep(0.2)
        assert w.agents["h1"].asked == ["busybox", "busybox"]
        # ...and the background answer (no) counts from then on.
        missing = await s.place([request("c", image="busybox")])
        assert isinstance(missing[0], errors.NotFound)
    with_world(etcd, body)


def test_two_schedulers_never_double_book(etcd: Etcd) -> None:
    async def body(w: World) -> None:
        await w.node("h1", cpus=2)
        first, second = w.scheduler(), w.scheduler()
        outcomes = await asyncio.gather(
            first.place([request("a", cpus=2, pinned="h1")]),
            second.place([request("b", cpus=2, pinned="h1")]))
        placed = [o[0] for o in outcomes if isinstance(o[0], Placed)]
        refused = [o[0] for o in outcomes if isinstance(o[0], Unschedulable)]
        assert len(placed) == 1 and len(refused) == 1
        assert "does not have 2 CPUs free to reserve (2 of 2 reserved)" in str(refused[0])
    with_world(etcd, body)


def test_a_conflict_places_the_requests_again(etcd: Etcd) -> None:
    async def body(w: World) -> None:
        await w.node("h1", cpus=4)
        await w.node("h2", cpus=4)
        s, other = w.scheduler(), w.scheduler()
        await s.place([request("seed")])      # h1 holds one: spread picks h2 next
        real_loads = s._loads

        async def stale_loads():
            loads = await real_loads()
            if not raced:
                # Another controller books h2 after we read it.
                raced.append(await other.place([request("theirs", cpus=4, pinned="h2")]))
            return loads
        raced: list = []
        s._loads = stale_loads
        placed = await s.place([request("mine", cpus=2)])
        assert isinstance(raced[0][0], Placed)
        assert hosts(w, placed) == ["h1"]
        h2 = await s.allocation(w.ids["h2"])
        assert (h2.containers, h2.nano_cpus) == (1, 4_000_000_000)
    with_world(etcd, body)


def test_thousands_in_one_call(etcd: Etcd) -> None:
    async def body(w: World) -> None:
        for index in range(20):
            await w.node(f"n{index:02d}")
        s = w.scheduler()
        placed = await s.place([request(f"{i:064x}", spread_key="svc") for i in range(3000)])
        assert Counter(hosts(w, placed)) == {f"n{i:02d}": 150 for i in range(20)}
        allocated = await s.allocations()
        assert sum(allocated[node_id].containers for node_id in w.ids.values()) == 3000
    with_world(etcd, body)


def test_the_watched_view_places_without_reads_and_is_checked_by_etcd(etcd: Etcd, caplog) -> None:
    caplog.set_level(logging.INFO)

    async def body(w: World) -> None:
        node_id = await w.node("h1", cpus=4)
        s = w.scheduler()
        watching = asyncio.create_task(s.run())
        try:
            while s.view is None or not s.view.synced:
                await asyncio.sleep(0.01)
            reads = []
            real_list = w.store.list

            async def counted(prefix):
                reads.append(prefix)
                return await real_list(prefix)
            w.store.list = counted
            # Our own writes go into the view with their revision: no conflict, no read.
            for name in ("a", "b"):
                assert hosts(w, await s.place([request(name, cpus=2)])) == ["h1"]
            assert reads == [] and "placing again" not in caplog.text
            # Watch events held back: the view misses what others write.
            real_apply = s.view._apply
            s.view._apply = lambda prefix, change: None
            await s.release(node_id, ["a", "b"])
            # The view says full; etcd, read before refusing, says there is room.
            assert hosts(w, await s.place([request("c", cpus=2)])) == ["h1"]
            assert reads, "a refusal on the view must be checked against etcd"
            # The view misses another controller's booking: the write conflicts, etcd decides.
            await w.scheduler().place([request("d", cpus=2, pinned="h1")])
            refused = await s.place([request("e", cpus=1)])
            assert str(refused[0]) == "no node has 1 CPUs free to reserve: 1 node, 0 match"
            assert "placing again" in caplog.text
            # With the events flowing again, the view catches up by itself.
            s.view._apply = real_apply
            await s.release(node_id, ["d"])
            while s.view.summary(node_id).nano_cpus != 2_000_000_000:
                await asyncio.sleep(0.01)
            reads.clear()
            assert hosts(w, await s.place([request("f", cpus=2)])) == ["h1"]
            assert reads == []
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
        assert s.view is None
        assert (await s.allocation(node_id)).nano_cpus == 4_000_000_000
    with_world(etcd, body)
