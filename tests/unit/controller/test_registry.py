"""NodeRegistry over a real etcd: records, presence leases, heartbeats."""

from __future__ import annotations

import asyncio
import time

import pytest

from controller.nodes import NodeRegistry
from controller.store import EtcdStore
from kran import errors
from kran.api.v1 import nodes_pb2
from tests.procs import Etcd


def desc(hostname: str, cpus: int = 1) -> nodes_pb2.NodeDescription:
    return nodes_pb2.NodeDescription(hostname=hostname, address="127.0.0.1:7641", cpus=cpus)


def with_registry(etcd: Etcd, body, ttl: int = 3):
    async def main():
        store = EtcdStore([etcd.endpoint])
        try:
            return await body(NodeRegistry(store, ttl), store)
        finally:
            await store.close()
    return asyncio.run(main())


def test_register_creates_then_updates(etcd: Etcd) -> None:
    node_id = "r1" + "0" * 23

    async def body(registry: NodeRegistry, store: EtcdStore) -> None:
        first = await registry.register(node_id, desc("one"))
        record = await store.get(f"nodes/{node_id}")
        second = await registry.register(node_id, desc("one", cpus=4))
        updated = await store.get(f"nodes/{node_id}")
        assert updated.value["created_at"] == record.value["created_at"]
        assert updated.value["updated_at"] > record.value["updated_at"]
        assert updated.value["description"]["cpus"] == 4
        # The new registration's lease holds the presence key; the old one is gone.
        assert (await store.get(f"presence/{node_id}")).lease == second
        assert await store.refresh_lease(first) == 0
        node = await registry.resolve(node_id)
        assert node.ready and node.hostname == "one"
    with_registry(etcd, body)


def test_heartbeat_needs_the_current_lease(etcd: Etcd) -> None:
    node_id = "r2" + "0" * 23

    async def body(registry: NodeRegistry, store: EtcdStore) -> None:
        lease = await registry.register(node_id, desc("two"))
        await registry.heartbeat(node_id, lease)
        with pytest.raises(errors.NotFound, match="register again"):
            await registry.heartbeat(node_id, lease + 1)
        with pytest.raises(errors.NotFound):
            await registry.heartbeat("z" * 25, lease)
        await store.revoke_lease(lease)
        with pytest.raises(errors.NotFound):
            await registry.heartbeat(node_id, lease)
        assert not (await registry.resolve(node_id)).ready
    with_registry(etcd, body)


def test_node_goes_down_when_its_lease_expires(etcd: Etcd) -> None:
    node_id = "r3" + "0" * 23

    async def body(registry: NodeRegistry, store: EtcdStore) -> float:
        await registry.register(node_id, desc("three"))
        started = time.monotonic()
        while (await registry.resolve(node_id)).ready:
            await asyncio.sleep(0.1)
        return time.monotonic() - started
    assert with_registry(etcd, body, ttl=2) <= 3.5


def test_ready_is_sorted_by_hostname(etcd: Etcd) -> None:
    async def body(registry: NodeRegistry, store: EtcdStore) -> list[str]:
        for name in ("zulu", "alpha", "mike"):
            await registry.register(f"s{name}".ljust(25, "0"), desc(f"sort-{name}"))
        return [n.hostname for n in await registry.ready() if n.hostname.startswith("sort-")]
    assert with_registry(etcd, body) == ["sort-alpha", "sort-mike", "sort-zulu"]
