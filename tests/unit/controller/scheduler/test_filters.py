"""Each filter's check and its explanations."""

from __future__ import annotations

from controller.scheduler import filters
from controller.scheduler.allocations import Reservation
from controller.scheduler.constraints import parse
from tests.unit.controller.scheduler.nodes import GIB, candidate

NANO = 1_000_000_000


def test_ready_and_active():
    up, down = candidate("h1"), candidate("h2", ready=False)
    paused, drained = candidate("h3", availability="PAUSE"), candidate("h4", availability="DRAIN")
    assert filters.Ready().check(up) and not filters.Ready().check(down)
    assert filters.Ready().refusal(down) == "is down"
    assert filters.Active().check(up) and not filters.Active().check(paused)
    assert filters.Active().refusal(paused) == "is paused"
    assert filters.Active().refusal(drained) == "is drained"
    assert filters.Ready().explain(3, 0) == "no node is ready: 3 nodes, 0 match"


def test_pinned_and_constraints():
    h1, h2 = candidate("h1"), candidate("h2", labels={"zone": "a"})
    pinned = filters.Pinned(h1.id, "h1")
    assert pinned.check(h1) and not pinned.check(h2)
    zone = filters.Satisfies(parse("node.labels.zone==a"))
    assert zone.check(h2) and not zone.check(h1)
    assert zone.explain(1, 0) == "no node satisfies node.labels.zone==a: 1 node, 0 match"
    assert zone.refusal(h1) == "does not satisfy node.labels.zone==a"


def test_limits_against_capacity():
    small = candidate("h1", cpus=2, memory=GIB)
    unknown = candidate("h2", cpus=0, memory=0)
    assert filters.CpuLimit(2 * NANO).check(small)
    assert not filters.CpuLimit(2 * NANO + 1).check(small)
    assert filters.CpuLimit(64 * NANO).check(unknown)   # capacity not reported: not checked
    assert not filters.MemoryLimit(2 * GIB).check(small)
    assert filters.MemoryLimit(2 * GIB).explain(3, 0) == \
        "no node has 2GiB of memory for the limit: 3 nodes, 0 match"
    assert filters.CpuLimit(2_500_000_000).refusal(small) == \
        "has 2 CPUs, fewer than the limit of 2.5"


def test_reservations_add_up():
    busy = candidate("h1", cpus=4, memory=4 * GIB, reserved=[
        Reservation(nano_cpus=3 * NANO, memory_bytes=3 * GIB), Reservation(nano_cpus=NANO // 2)])
    assert busy.load.nano_cpus == 3_500_000_000 and busy.load.count == 2
    assert filters.CpuReservation(NANO // 2).check(busy)
    assert not filters.CpuReservation(NANO).check(busy)
    assert filters.CpuReservation(NANO).refusal(busy) == \
        "does not have 1 CPUs free to reserve (3.5 of 4 reserved)"
    assert filters.MemoryReservation(GIB).check(busy)
    assert not filters.MemoryReservation(GIB + 1).check(busy)
    assert filters.CpuReservation(4 * NANO).explain(3, 0) == \
        "no node has 4 CPUs free to reserve: 3 nodes, 0 match"


def test_ports():
    web = candidate("h1", reserved=[Reservation(ports=("80/tcp", "443/tcp"))])
    assert filters.PortsFree(("8080/tcp",)).check(web)
    assert filters.PortsFree(("80/udp",)).check(web)
    assert not filters.PortsFree(("443/tcp", "8443/tcp")).check(web)
    assert filters.PortsFree(("443/tcp", "8443/tcp")).refusal(web) == \
        "already publishes host port 443/tcp"


def test_image():
    h1, h2, h3 = candidate("h1"), candidate("h2"), candidate("h3")
    has = filters.HasImage("busybox:latest", {h1.id}, ("h3: node h3 is unreachable",))
    assert has.check(h1) and not has.check(h2)
    assert has.refusal(h2) == "does not have image busybox:latest"
    assert has.refusal(h3) == \
        "could not say whether it has image busybox:latest: node h3 is unreachable"
    assert has.explain(2, 0) == \
        "no node has image busybox:latest: 2 nodes, 0 match; h3: node h3 is unreachable"


def test_explain_names_the_first_filter_that_leaves_none():
    nodes = [candidate("h1", ready=False), candidate("h2"), candidate("h3", labels={"zone": "a"})]
    pipeline = [filters.Ready(), filters.Active(), filters.Satisfies(parse("node.labels.zone==a")),
                filters.CpuReservation(8 * NANO)]
    assert filters.explain(pipeline, nodes, pinned=False) == \
        "no node has 8 CPUs free to reserve: 1 node, 0 match"
    pinned = [filters.Pinned(nodes[0].id, "h1"), *pipeline]
    assert filters.explain(pinned, nodes, pinned=True) == f"node h1 ({nodes[0].id}) is down"
