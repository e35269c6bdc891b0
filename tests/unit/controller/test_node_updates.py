"""Nodes.Update and Nodes.Remove (and the allocation nodes show) against a real etcd."""

from __future__ import annotations

import asyncio

import pytest

from controller.agents import AgentPool
from controller.api.nodes import NodesService
from controller.nodes import NodeRegistry
from controller.scheduler import Placed, Request, Scheduler
from controller.scheduler.allocations import PREFIX as ALLOCATIONS, key as allocation_key
from controller.store import EtcdStore
from kran import errors
from kran.api.v1 import containers_pb2, nodes_pb2
from tests.procs import Etcd

H1, H2 = "h1".ljust(25, "0"), "h2".ljust(25, "0")


def with_nodes(etcd: Etcd, body):
    """Run body(service, registry, store) with nodes h1 and h2 registered."""
    async def main():
        store = EtcdStore([etcd.endpoint])
        registry = NodeRegistry(store, ttl=30)
        pool = AgentPool()
        try:
            for node_id, hostname in ((H1, "h1"), (H2, "h2")):
                await registry.register(node_id, nodes_pb2.NodeDescription(
                    hostname=hostname, address="127.0.0.1:1", cpus=2, memory_bytes=1 << 30))
            service = NodesService(registry, Scheduler(store, registry, pool))
            return await body(service, registry, store)
        finally:
            await pool.close()
            for prefix in ("presence/", "nodes/", ALLOCATIONS):
                for key in await store.keys(prefix):
                    await store.delete(key)
            await store.close()
    return asyncio.run(main())


def update(**fields) -> nodes_pb2.UpdateNodeRequest:
    return nodes_pb2.UpdateNodeRequest(**fields)


def test_update_availability_and_labels(etcd: Etcd) -> None:
    async def body(service: NodesService, registry: NodeRegistry, store: EtcdStore) -> None:
        node = await service.Update(update(
            node="h1", availability=nodes_pb2.NODE_AVAILABILITY_DRAIN, availability_set=True,
            label_add={"zone": "a", "ssd": ""}), None)
        assert node.availability == nodes_pb2.NODE_AVAILABILITY_DRAIN
        assert dict(node.labels) == {"zone": "a", "ssd": ""}
        # Without availability_set the availability stays; adds come before removals.
        node = await service.Update(update(node=H1[:3], label_add={"zone": "b"},
                                           label_rm=["ssd"]), None)
        assert node.availability == nodes_pb2.NODE_AVAILABILITY_DRAIN
        assert dict(node.labels) == {"zone": "b"}
        stored = (await registry.resolve("h1")).record.value
        assert stored["availability"] == "DRAIN" and stored["labels"] == {"zone": "b"}
        # A re-registration keeps the users' spec.
        await registry.register(H1, nodes_pb2.NodeDescription(hostname="h1", address="127.0.0.1:2"))
        assert (await registry.resolve("h1")).record.value["labels"] == {"zone": "b"}
        with pytest.raises(errors.InvalidArgument,
                           match="^key nope doesn't exist in node's labels$"):
            await service.Update(update(node="h1", label_rm=["nope"]), None)
        with pytest.raises(errors.InvalidArgument, match="empty name"):
            await service.Update(update(node="h1", label_add={"": "x"}), None)
        with pytest.raises(errors.InvalidArgument, match="invalid availability"):
            await registry.update("h1", availability="SLEEP")
        with pytest.raises(errors.NotFound):
            await service.Update(update(node="h9"), None)
    with_nodes(etcd, body)


def test_concurrent_updates_all_land(etcd: Etcd) -> None:
    async def body(service: NodesService, registry: NodeRegistry, store: EtcdStore) -> None:
        await asyncio.gather(*(registry.update("h2", label_add={f"k{i}": str(i)})
                               for i in range(8)))
        labels = (await registry.resolve("h2")).record.value["labels"]
        assert labels == {f"k{i}": str(i) for i in range(8)}
    with_nodes(etcd, body)


def test_remove(etcd: Etcd) -> None:
    async def body(service: NodesService, registry: NodeRegistry, store: EtcdStore) -> None:
        placed = await service.scheduler.place([Request("c1", containers_pb2.Placement(
            reserve_nano_cpus=500_000_000), pinned="h1")])
        assert isinstance(placed[0], Placed)
        with pytest.raises(errors.FailedPrecondition,
                           match="^node h1 is not down and can't be removed$"):
            await service.Remove(nodes_pb2.RemoveNodeRequest(node="h1"), None)
        await service.Remove(nodes_pb2.RemoveNodeRequest(node="h1", force=True), None)
        assert [n.description.hostname for n in
                (await service.List(nodes_pb2.ListNodesRequest(), None)).nodes] == ["h2"]
        for key in (f"nodes/{H1}", f"presence/{H1}", allocation_key(H1)):
            assert await store.get(key) is None
        # A node that is down goes without force.
        await store.delete(f"presence/{H2}")
        await service.Remove(nodes_pb2.RemoveNodeRequest(node="h2"), None)
        with pytest.raises(errors.NotFound):
            await service.Remove(nodes_pb2.RemoveNodeRequest(node="h2"), None)
        # The agent registers again: the same id comes back.
        await registry.register(H1, nodes_pb2.NodeDescription(hostname="h1", address="127.0.0.1:2"))
        assert (await registry.resolve("h1")).id == H1
    with_nodes(etcd, body)


def test_nodes_show_their_allocation(etcd: Etcd) -> None:
    async def body(service: NodesService, registry: NodeRegistry, store: EtcdStore) -> None:
        requests = [Request(f"c{i}", containers_pb2.Placement(
            reserve_nano_cpus=500_000_000, reserve_memory_bytes=1 << 20), ports=(f"80{i}/tcp",),
            pinned="h2") for i in range(3)]
        assert all(isinstance(p, Placed) for p in await service.scheduler.place(requests))
        shown = await service.Inspect(nodes_pb2.InspectNodeRequest(node="h2"), None)
        assert shown.allocated == nodes_pb2.NodeAllocation(
            nano_cpus=1_500_000_000, memory_bytes=3 << 20, containers=3,
            ports=["800/tcp", "801/tcp", "802/tcp"])
        listed = {n.description.hostname: n for n in
                  (await service.List(nodes_pb2.ListNodesRequest(), None)).nodes}
        assert listed["h2"].allocated == shown.allocated
        assert listed["h1"].allocated == nodes_pb2.NodeAllocation()
    with_nodes(etcd, body)
