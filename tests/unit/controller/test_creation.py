"""Creator: placement, the record's placement, and reservations released on every way out."""

from __future__ import annotations

import grpc

from controller.scheduler.allocations import key as allocation_key
from kran.api.v1 import containers_pb2 as c_pb, nodes_pb2
from tests.procs import Etcd
from tests.unit.controller.test_containers_forwarding import Cluster, failure, with_cluster

TWO = {"alpha": {"busybox"}, "beta": {"busybox"}}


async def reserved(c: Cluster, hostname: str) -> set[str]:
    """The container ids holding a reservation on a node."""
    entry = await c.store.get(allocation_key(c.ids[hostname]))
    return set(entry.value["containers"]) if entry is not None else set()


async def create(c: Cluster, name: str, *constraints: str, node: str = "",
                 cmd: tuple[str, ...] = ("sleep", "9"),
                 ports: tuple[int, ...] = ()) -> c_pb.Container:
    config = c_pb.ContainerConfig(image="busybox", cmd=list(cmd), ports=[
        c_pb.PortBinding(container_port=80, host_port=port) for port in ports])
    return await c.stub.Create(c_pb.CreateContainerRequest(
        name=name, node=node, config=config,
        placement=c_pb.Placement(constraints=list(constraints))))


def test_create_spreads_and_keeps_the_placement(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        made = [await create(c, f"s{i}") for i in range(4)]
        assert [m.node_name for m in made] == ["alpha", "beta", "alpha", "beta"]
        assert await reserved(c, "alpha") == {made[0].id, made[2].id}
        pinned = await create(c, "pin", "node.hostname!=alpha")
        assert pinned.node_name == "beta"
        assert list(pinned.placement.constraints) == ["node.hostname!=alpha"]
        shown = await c.stub.Inspect(c_pb.InspectContainerRequest(container="pin"))
        assert list(shown.placement.constraints) == ["node.hostname!=alpha"]
        nowhere = await failure(create(c, "zz", "node.labels.zone==x"))
        assert nowhere.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert nowhere.details() == "no node satisfies node.labels.zone==x: 2 nodes, 0 match"
        bad = await failure(create(c, "bb", "zone=x"))
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    with_cluster(etcd, TWO, body)


def test_published_ports_keep_apart(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        await create(c, "w1", ports=(8080,))
        await create(c, "w2", ports=(8080,))
        third = await failure(create(c, "w3", ports=(8080,)))
        assert third.details() == "no node has host port 8080/tcp free: 2 nodes, 0 match"
        await c.stub.Remove(c_pb.RemoveContainerRequest(container="w1", force=True))
        assert (await create(c, "w3", ports=(8080,))).node_name == "alpha"
    with_cluster(etcd, TWO, body)


def test_every_way_out_releases_the_reservation(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        # The agent refuses: record and reservation go.
        refused = await failure(create(c, "rr", cmd=("refuse",)))
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert await reserved(c, "alpha") == set()
        # A taken name: the reservation made for it goes.
        await create(c, "taken", node="alpha")
        await failure(create(c, "taken", node="alpha"))
        assert len(await reserved(c, "alpha")) == 1
        # rm
        await c.stub.Remove(c_pb.RemoveContainerRequest(container="taken", force=True))
        assert await reserved(c, "alpha") == set()
        # an agent's report that --rm removed it
        gone = await create(c, "auto", node="alpha")
        await c.dispatcher.ReportContainers(nodes_pb2.ReportContainersRequest(
            node_id=c.ids["alpha"],
            containers=[nodes_pb2.ContainerReport(id=gone.id, removed=True)]))
        assert await reserved(c, "alpha") == set()
        # prune
        pruned = await create(c, "old", node="alpha")
        await c.stub.Kill(c_pb.KillContainerRequest(container="old"))
        await c.stub.Prune(c_pb.PruneContainersRequest())
        assert pruned.id not in await reserved(c, "alpha")
        # rm -f of a container on a node that is down
        lost = await create(c, "lost", node="beta")
        await c.down("beta")
        await c.stub.Remove(c_pb.RemoveContainerRequest(container="lost", force=True))
        assert lost.id not in await reserved(c, "beta")
    with_cluster(etcd, TWO, body)
