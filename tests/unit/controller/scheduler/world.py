"""A small cluster for scheduler tests: nodes registered in a real etcd, toy image agents."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from controller.agents import AgentPool
from controller.nodes import NodeRegistry
from controller.scheduler import Request, Scheduler
from controller.scheduler.allocations import PREFIX as ALLOCATIONS
from controller.store import EtcdStore
from kran import errors
from kran.api.v1 import containers_pb2, images_pb2, images_pb2_grpc, nodes_pb2
from kran.server import start_server
from tests.procs import Etcd, free_port

T = TypeVar("T")
GIB = 1 << 30
_IMAGES = images_pb2.DESCRIPTOR.services_by_name["Images"].full_name


class ToyImages(images_pb2_grpc.ImagesServicer):
    """An agent's Images.Inspect over a set of references; `broken` answers INTERNAL."""

    def __init__(self, refs: set[str], broken: bool = False) -> None:
        self.refs = refs
        self.broken = broken
        self.asked: list[str] = []

    async def Inspect(self, request, context):
        self.asked.append(request.reference)
        if self.broken:
            raise errors.Internal("the image store is broken")
        if request.reference not in self.refs:
            raise errors.NotFound(f"No such image: {request.reference}")
        return images_pb2.ImageDetail(image=images_pb2.Image(id="sha256:" + "1" * 64))


class World:
    """Nodes h1, h2, ... in etcd, each with a toy agent holding some images."""

    def __init__(self, store: EtcdStore) -> None:
        self.store = store
        self.registry = NodeRegistry(store, ttl=30)
        self.pool = AgentPool()
        self.ids: dict[str, str] = {}
        self.agents: dict[str, ToyImages] = {}
        self.servers: list[Any] = []

    async def node(self, hostname: str, cpus: int = 4, memory: int = 8 * GIB,
                   images: set[str] | None = None, broken: bool = False,
                   engine_labels: dict[str, str] | None = None) -> str:
        """Register a node (with a toy agent serving Images); its id."""
        address = f"127.0.0.1:{free_port()}"
        toy = ToyImages(images if images is not None else {"busybox"}, broken)
        self.servers.append(await start_server(address, [
            (images_pb2_grpc.add_ImagesServicer_to_server, toy, _IMAGES)]))
        node_id = hostname.ljust(25, "0")
        await self.registry.register(node_id, nodes_pb2.NodeDescription(
            hostname=hostname, address=address, cpus=cpus, memory_bytes=memory, os="linux",
            architecture="x86_64", labels=engine_labels or {}))
        self.ids[hostname], self.agents[hostname] = node_id, toy
        return node_id

    async def set(self, hostname: str, **fields: Any) -> None:
        """Change fields of a node's record (availability, labels) directly."""
        entry = await self.store.get(f"nodes/{self.ids[hostname]}")
        await self.store.put(entry.key, {**entry.value, **fields})

    async def down(self, hostname: str) -> None:
        await self.store.delete(f"presence/{self.ids[hostname]}")

    def scheduler(self, strategy: str = "spread") -> Scheduler:
        return Scheduler(self.store, self.registry, self.pool, strategy)

    def hostname(self, node_id: str) -> str:
        return {v: k for k, v in self.ids.items()}[node_id]

    async def close(self) -> None:
        for server in self.servers:
            await server.stop(None)
        await self.pool.close()
        for prefix in ("presence/", "nodes/", ALLOCATIONS):
            for key in await self.store.keys(prefix):
                await self.store.delete(key)
        await self.store.close()


def with_world(etcd: Etcd, body: Callable[[World], Awaitable[T]]) -> T:
    """Run body(world) against the etcd fixture and remove everything it made."""
    async def main() -> T:
        world = World(EtcdStore([etcd.endpoint]))
        try:
            return await body(world)
        finally:
            await world.close()
    return asyncio.run(main())


def request(key: str, *constraints: str, cpus: float = 0, memory: int = 0, strategy: str = "",
            **fields: Any) -> Request:
    """A Request with a Placement built from keywords."""
    return Request(key=key, placement=containers_pb2.Placement(
        constraints=list(constraints), reserve_nano_cpus=int(cpus * 1_000_000_000),
        reserve_memory_bytes=memory, strategy=strategy), **fields)
