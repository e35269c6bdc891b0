"""The controller's Containers service against small in-process agents.

Each toy agent is a real gRPC server (Images.Inspect, Agent.Info and a
Containers service over a dict), so the test sees which node each call
reached and with which id; records live in a real etcd.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import pytest

from controller.agents import AgentPool
from controller.api.containers import ContainersService, wait_call
from controller.api.nodes import DispatcherService
from controller.api.system import ControllerFacts, SystemService
from controller.containers import GONE, NAMES, RECORDS, STATES, ContainerStore
from controller.creation import Creator
from controller.nodes import NodeRegistry
from controller.scheduler import Scheduler
from controller.scheduler.allocations import PREFIX as ALLOCATIONS
from controller.store import EtcdStore
from kran import errors
from kran.api.v1 import (containers_pb2, containers_pb2_grpc, images_pb2, images_pb2_grpc,
                         nodes_pb2, nodes_pb2_grpc, system_pb2, system_pb2_grpc)
from kran.server import start_server
from tests.procs import Etcd, free_port

c_pb = containers_pb2


def _name(module: object, service: str) -> str:
    return module.DESCRIPTOR.services_by_name[service].full_name  # type: ignore[attr-defined]



@pytest.fixture(autouse=True)
def log_everything(caplog: pytest.LogCaptureFixture) -> None:
    """Emit every log record, so a bad one (e.g. a reserved `extra` key) fails the test."""
    caplog.set_level(logging.DEBUG)

class ToyImages(images_pb2_grpc.ImagesServicer):
    def __init__(self, refs: set[str]) -> None:
        self.refs = refs

    async def Inspect(self, request, context):
        if request.reference not in self.refs:
            raise errors.NotFound(f"No such image: {request.reference}")
        return images_pb2.ImageDetail(image=images_pb2.Image(id="sha256:" + "1" * 64))


class ToyInfo(system_pb2_grpc.AgentServicer):
    async def Info(self, request, context):
        return system_pb2.AgentInfoResponse(images=1)


class ToyContainers(containers_pb2_grpc.ContainersServicer):
    """An agent whose containers are messages in a dict, by full id."""

    def __init__(self, refs: set[str]) -> None:
        self.refs = refs
        self.containers: dict[str, c_pb.Container] = {}
        self.seen: list[tuple[str, str]] = []     # (method, container id) as received
        self.exited: dict[str, asyncio.Event] = {}
        self.hung_up = asyncio.Event()            # a stream's caller went away
        self.copied = b""

    def _get(self, method: str, container_id: str) -> c_pb.Container:
        self.seen.append((method, container_id))
        if container_id not in self.containers:
            raise errors.NotFound(f"No such container: {container_id}")
        return self.containers[container_id]

    def _move(self, container: c_pb.Container, status: str, **fields: object) -> c_pb.Container:
        state = container.state
        state.status, state.sequence = status, state.sequence + 1
        for key, value in fields.items():
            setattr(state, key, value)
        if status == "exited":
            self.exited[container.id].set()
        else:
            self.exited[container.id].clear()
        return c_pb.Container.FromString(container.SerializeToString())

    async def Create(self, request, context):
        self.seen.append(("Create", request.id))
        if request.config.image not in self.refs:
            raise errors.NotFound(f"No such image: {request.config.image}")
        if request.config.cmd and request.config.cmd[0] == "refuse":
            raise errors.InvalidArgument("the agent refuses this one")
        config = c_pb.ContainerConfig()
        config.CopyFrom(request.config)
        config.env.append("PATH=/bin")
        made = c_pb.Container(id=request.id, name=request.name, image_id="sha256:" + "1" * 64,
                              path=config.cmd[0] if config.cmd else "sh",
                              args=config.cmd[1:], config=config,
                              state=c_pb.ContainerState(status="created", sequence=1))
        made.created.GetCurrentTime()
        self.containers[request.id] = made
        self.exited[request.id] = asyncio.Event()
        return made

    async def Start(self, request, context):
        return self._move(self._get("Start", request.container), "running", pid=42)

    async def Stop(self, request, context):
        return self._move(self._get("Stop", request.container), "exited", pid=0,
                          exit_code=request.timeout)

    async def Restart(self, request, context):
        return self._move(self._get("Restart", request.container), "running", pid=43)

    async def Kill(self, request, context):
        return self._move(self._get("Kill", request.container), "exited", exit_code=137)

    async def Remove(self, request, context):
        self._get("Remove", request.container)
        del self.containers[request.container]
        return c_pb.RemoveContainerResponse()

    async def Rename(self, request, context):
        container = self._get("Rename", request.container)
        container.name = request.name
        return container

    async def Wait(self, request, context):
        container = self._get("Wait", request.container)
        await context.send_initial_metadata(())
        await self.exited[container.id].wait()
        return c_pb.WaitContainerResponse(status_code=container.state.exit_code)

    async def Prune(self, request, context):
        gone = [cid for cid, c in self.containers.items() if c.state.status == "exited"]
        for cid in gone:
            del self.containers[cid]
        return c_pb.PruneContainersResponse(deleted=gone, space_reclaimed=10 * len(gone))

    async def Top(self, request, context):
        self._get("Top", request.container)
        return c_pb.TopResponse(titles=["PID", "CMD"],
                                processes=[c_pb.TopProcess(fields=["42", "sleep"])])

    async def Diff(self, request, context):
        self._get("Diff", request.container)
        return c_pb.DiffResponse(changes=[c_pb.Change(path="/tmp", kind="C")])

    async def Commit(self, request, context):
        self._get("Commit", request.container)
        return images_pb2.Image(id="sha256:" + "c" * 64, repo_tags=[request.reference])

    async def Stats(self, request, context):
        container = self._get("Stats", request.container)
        for n in range(3 if request.stream else 1):
            yield c_pb.ContainerStats(id=container.id, pids=n)

    async def Logs(self, request, context):
        self._get("Logs", request.container)
        try:
            yield c_pb.LogEntry(data=b"one\n")
            yield c_pb.LogEntry(data=b"two\n", stream=c_pb.STREAM_STDERR)
            while request.follow:
                await asyncio.sleep(0.05)
        finally:
            self.hung_up.set()

    async def CopyFrom(self, request, context):
        self._get("CopyFrom", request.container)
        yield images_pb2.DataChunk(data=b"tar:" + request.path.encode())

    async def CopyTo(self, request_iterator, context):
        async for message in request_iterator:
            if message.HasField("header"):
                self._get("CopyTo", message.header.container)
            else:
                self.copied += message.chunk
        return c_pb.CopyToResponse()

    async def Attach(self, request_iterator, context):
        try:
            async for message in request_iterator:
                part = message.WhichOneof("part")
                if part == "options":
                    self._get("Attach", message.options.container)
                elif part == "stdin":
                    yield c_pb.AttachResponse(stdout=message.stdin.upper())
                elif part == "close_stdin":
                    yield c_pb.AttachResponse(exit=c_pb.ExitStatus(code=5))
                    return
        finally:
            self.hung_up.set()

    async def Exec(self, request_iterator, context):
        try:
            async for message in request_iterator:
                if message.WhichOneof("part") == "options":
                    self._get("Exec", message.options.container)
                    yield c_pb.ExecResponse(stdout=b"ready")
        finally:
            self.hung_up.set()


class Cluster:
    """A controller's Containers and Dispatcher services over toy agents."""

    def __init__(self) -> None:
        self.agents: dict[str, ToyContainers] = {}
        self.ids: dict[str, str] = {}
        self.store: EtcdStore
        self.channel: grpc.aio.Channel
        self.registry: NodeRegistry
        self.stub: containers_pb2_grpc.ContainersStub
        self.dispatcher: nodes_pb2_grpc.DispatcherStub
        self.system: system_pb2_grpc.SystemStub

    async def create(self, name: str = "", image: str = "busybox", cmd: tuple[str, ...] = ("sleep", "9"),
                     node: str = "") -> c_pb.Container:
        return await self.stub.Create(c_pb.CreateContainerRequest(
            name=name, node=node, config=c_pb.ContainerConfig(image=image, cmd=list(cmd))))

    async def inspect(self, ref: str) -> c_pb.Container:
        return await self.stub.Inspect(c_pb.InspectContainerRequest(container=ref))

    async def down(self, hostname: str) -> None:
        await self.store.delete(f"presence/{self.ids[hostname]}")


def with_cluster(etcd: Etcd, contents: dict[str, set[str]], body):
    """Run body(cluster) with one toy agent per hostname (holding those image refs)."""
    async def main():
        cluster = Cluster()
        cluster.store = store = EtcdStore([etcd.endpoint])
        cluster.registry = registry = NodeRegistry(store, ttl=10)
        containers = ContainerStore(store)
        pool = AgentPool()
        servers = []
        try:
            for index, (hostname, refs) in enumerate(contents.items()):
                cluster.agents[hostname] = toy = ToyContainers(refs)
                address = f"127.0.0.1:{free_port()}"
                servers.append(await start_server(address, [
                    (images_pb2_grpc.add_ImagesServicer_to_server, ToyImages(refs),
                     _name(images_pb2, "Images")),
                    (system_pb2_grpc.add_AgentServicer_to_server, ToyInfo(),
                     _name(system_pb2, "Agent")),
                    (containers_pb2_grpc.add_ContainersServicer_to_server, toy,
                     _name(containers_pb2, "Containers"))]))
                cluster.ids[hostname] = f"{index}{hostname}".ljust(25, "0")
                await registry.register(cluster.ids[hostname], nodes_pb2.NodeDescription(
                    hostname=hostname, address=address))
            address = f"127.0.0.1:{free_port()}"
            facts = ControllerFacts(address=address, etcd_endpoints=[etcd.endpoint],
                                    embedded_etcd=False)
            servers.append(await start_server(address, [
                (containers_pb2_grpc.add_ContainersServicer_to_server,
                 ContainersService(containers, registry, pool, Creator(
                     containers, registry, pool, Scheduler(store, registry, pool))),
                 _name(containers_pb2, "Containers")),
                (nodes_pb2_grpc.add_DispatcherServicer_to_server,
                 DispatcherService(registry, containers), _name(nodes_pb2, "Dispatcher")),
                (system_pb2_grpc.add_SystemServicer_to_server,
                 SystemService(facts, store, registry, pool, containers),
                 _name(system_pb2, "System"))]))
            async with grpc.aio.insecure_channel(address) as channel:
                cluster.channel = channel
                cluster.stub = containers_pb2_grpc.ContainersStub(channel)
                cluster.dispatcher = nodes_pb2_grpc.DispatcherStub(channel)
                cluster.system = system_pb2_grpc.SystemStub(channel)
                return await body(cluster)
        finally:
            for server in servers:
                await server.stop(None)
            await pool.close()
            for prefix in ("presence/", "nodes/", RECORDS, NAMES, STATES, ALLOCATIONS):
                for key in await store.keys(prefix):
                    await store.delete(key)
            await store.close()
    return asyncio.run(main())


async def failure(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


ONE = {"alpha": {"busybox"}}
TWO = {"beta": {"busybox", "redis"}, "alpha": {"busybox"}}


def test_create_places_on_the_first_node_by_hostname_with_the_image(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        first = await c.create("b1")
        assert (first.node_name, first.node_id) == ("alpha", c.ids["alpha"])
        assert first.name == "b1" and len(first.id) == 64
        assert list(first.config.env) == ["PATH=/bin"] and first.path == "sleep"
        assert c.agents["alpha"].seen == [("Create", first.id)]
        only_beta = await c.create(image="redis")
        assert only_beta.node_name == "beta" and "_" in only_beta.name
        pinned = await c.create(node="beta")
        assert pinned.node_name == "beta"
        stored = await c.inspect("b1")
        assert stored.config == first.config and stored.state.status == "created"
        assert stored.node_name == "alpha" and stored.image_id == first.image_id
    with_cluster(etcd, TWO, body)


def test_create_refusals_leave_nothing_behind(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        missing = await failure(c.create("x1", image="nginx"))
        assert missing.code() == grpc.StatusCode.NOT_FOUND
        assert missing.details() == "No such image: nginx:latest"
        refused = await failure(c.create("x2", cmd=("refuse",)))
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.details() == "the agent refuses this one"
        pinned = await failure(c.create("x3", image="redis", node="alpha"))
        assert pinned.details() == "No such image: redis:latest"
        bad = await failure(c.create("-x"))
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad.details() == "Invalid container name (-x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        listed = await c.stub.List(c_pb.ListContainersRequest(all=True))
        assert list(listed.containers) == []
        again = await c.create("x2")  # the refused create freed its name
        taken = await failure(c.create("x2"))
        assert taken.code() == grpc.StatusCode.ALREADY_EXISTS
        assert f'"/x2" is already in use by container "{again.id}"' in taken.details()
        nowhere = await failure(c.create("y1", node="gamma"))
        assert nowhere.code() == grpc.StatusCode.NOT_FOUND
    with_cluster(etcd, TWO, body)


def test_no_ready_node_and_a_down_pinned_node(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        await c.down("alpha")
        pinned = await failure(c.create(node="alpha"))
        assert pinned.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "is down" in pinned.details()
        none = await failure(c.create())
        assert none.code() == grpc.StatusCode.FAILED_PRECONDITION
    with_cluster(etcd, ONE, body)


def test_calls_go_to_the_node_with_the_full_id_and_keep_the_state(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        made = await c.create("svc")
        agent = c.agents["alpha"]
        started = await c.stub.Start(c_pb.StartContainerRequest(container="svc"))
        assert started.state.status == "running" and started.node_name == "alpha"
        assert (await c.inspect(made.id[:10])).state.pid == 42
        await c.stub.Restart(c_pb.StopContainerRequest(container=made.id[:5]))
        stopped = await c.stub.Stop(c_pb.StopContainerRequest(container=made.id, timeout=3,
                                                              timeout_set=True))
        assert stopped.state.exit_code == 3
        killed = await c.stub.Kill(c_pb.KillContainerRequest(container="/svc"))
        assert killed.state.sequence == 5
        assert [m for m, _ in agent.seen] == ["Create", "Start", "Restart", "Stop", "Kill"]
        assert {cid for _, cid in agent.seen} == {made.id}
        shown = await c.inspect("svc")
        assert (shown.state.status, shown.state.exit_code, shown.state.sequence) == ("exited", 137, 5)
        unknown = await failure(c.stub.Start(c_pb.StartContainerRequest(container="nope")))
        assert unknown.code() == grpc.StatusCode.NOT_FOUND
        assert unknown.details() == "No such container: nope"
    with_cluster(etcd, ONE, body)


def test_list_filters_and_orders_from_etcd(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        old = await c.create("old")
        new = await c.create("new", image="redis")
        await c.stub.Start(c_pb.StartContainerRequest(container="new"))
        running = await c.stub.List(c_pb.ListContainersRequest())
        assert [x.name for x in running.containers] == ["new"]
        everything = await c.stub.List(c_pb.ListContainersRequest(all=True))
        assert [x.id for x in everything.containers] == [new.id, old.id]
        assert [x.node_name for x in everything.containers] == ["beta", "alpha"]
        on_alpha = await c.stub.List(c_pb.ListContainersRequest(
            all=True, filters={"node": c_pb.FilterValues(values=["alpha"])}))
        assert [x.name for x in on_alpha.containers] == ["old"]
        bad = await failure(c.stub.List(c_pb.ListContainersRequest(
            filters={"status": c_pb.FilterValues(values=["asleep"])})))
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
        info = await c.system.Info(system_pb2.InfoRequest())
        assert (info.containers, info.containers_running, info.containers_stopped) == (2, 1, 1)
    with_cluster(etcd, TWO, body)


def test_remove(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        made = await c.create("rm1")
        await c.stub.Remove(c_pb.RemoveContainerRequest(container="rm1", force=True))
        assert made.id not in c.agents["alpha"].containers
        assert (await failure(c.inspect(made.id))).code() == grpc.StatusCode.NOT_FOUND
        # A record the node no longer has is simply forgotten.
        lost = await c.create("rm2")
        del c.agents["alpha"].containers[lost.id]
        await c.stub.Remove(c_pb.RemoveContainerRequest(container="rm2"))
        await c.create("rm2")
        # A node that is down: only force forgets the record.
        await c.down("alpha")
        refused = await failure(c.stub.Remove(c_pb.RemoveContainerRequest(container="rm2")))
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "alpha" in refused.details() and "down" in refused.details()
        started = await failure(c.stub.Start(c_pb.StartContainerRequest(container="rm2")))
        assert started.code() == grpc.StatusCode.FAILED_PRECONDITION
        await c.stub.Remove(c_pb.RemoveContainerRequest(container="rm2", force=True))
        assert (await failure(c.inspect("rm2"))).code() == grpc.StatusCode.NOT_FOUND
    with_cluster(etcd, ONE, body)


def test_rename(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        made = await c.create("first")
        other = await c.create("other")
        renamed = await c.stub.Rename(c_pb.RenameContainerRequest(container="first", name="second"))
        assert renamed.name == "second"
        assert c.agents["alpha"].containers[made.id].name == "second"
        assert (await c.inspect("second")).id == made.id
        taken = await failure(c.stub.Rename(c_pb.RenameContainerRequest(
            container="second", name="other")))
        assert taken.code() == grpc.StatusCode.ALREADY_EXISTS and other.id in taken.details()
        same = await failure(c.stub.Rename(c_pb.RenameContainerRequest(
            container="second", name="second")))
        assert same.code() == grpc.StatusCode.INVALID_ARGUMENT
        # The agent refuses (it lost the container): the name goes back.
        del c.agents["alpha"].containers[made.id]
        await failure(c.stub.Rename(c_pb.RenameContainerRequest(container="second", name="third")))
        assert (await c.inspect("second")).id == made.id
        assert (await failure(c.inspect("third"))).code() == grpc.StatusCode.NOT_FOUND
    with_cluster(etcd, ONE, body)


def test_wait_answers_headers_once_the_agent_waits(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        made = await c.create("w1")
        await c.stub.Start(c_pb.StartContainerRequest(container="w1"))
        call = wait_call(c.channel, c_pb.WaitContainerRequest(container="w1"))
        await asyncio.wait_for(call.initial_metadata(), 5)
        assert not call.done()
        await c.stub.Stop(c_pb.StopContainerRequest(container="w1", timeout=7, timeout_set=True))
        assert (await call.read()).status_code == 7
        # Called the plain (unary) way, it answers the same.
        await c.stub.Start(c_pb.StartContainerRequest(container="w1"))
        await c.stub.Kill(c_pb.KillContainerRequest(container="w1"))
        plain = await c.stub.Wait(c_pb.WaitContainerRequest(container="w1"))
        assert plain.status_code == 137
        # Waiting for the removal: the record goes with the container.
        await c.stub.Wait(c_pb.WaitContainerRequest(container="w1", condition="removed"))
        assert (await failure(c.inspect("w1"))).code() == grpc.StatusCode.NOT_FOUND
        missing = wait_call(c.channel, c_pb.WaitContainerRequest(container="nope"))
        assert (await failure(missing.read())).code() == grpc.StatusCode.NOT_FOUND
        assert ("Wait", made.id) in c.agents["alpha"].seen
    with_cluster(etcd, ONE, body)


def test_unary_and_server_streams_are_forwarded(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        made = await c.create("s1")
        top = await c.stub.Top(c_pb.TopRequest(container="s1"))
        assert list(top.titles) == ["PID", "CMD"]
        diff = await c.stub.Diff(c_pb.DiffRequest(container="s1"))
        assert [(x.kind, x.path) for x in diff.changes] == [("C", "/tmp")]
        image = await c.stub.Commit(c_pb.CommitRequest(container="s1", reference="mine:1"))
        assert (image.node_name, image.node_id) == ("alpha", c.ids["alpha"])
        stats = [s async for s in c.stub.Stats(c_pb.StatsRequest(container="s1", stream=True))]
        assert [s.pids for s in stats] == [0, 1, 2] and stats[0].id == made.id
        logs = [e async for e in c.stub.Logs(c_pb.LogsRequest(container="s1"))]
        assert [(e.stream, e.data) for e in logs] == [(c_pb.STREAM_STDOUT, b"one\n"),
                                                      (c_pb.STREAM_STDERR, b"two\n")]
        chunks = [x.data async for x in c.stub.CopyFrom(c_pb.CopyFromRequest(
            container="s1", path="/etc"))]
        assert chunks == [b"tar:/etc"]

        async def upload() -> AsyncIterator[c_pb.CopyToRequest]:
            yield c_pb.CopyToRequest(header=c_pb.CopyToHeader(container="s1", path="/tmp"))
            for part in (b"ab", b"cd"):
                yield c_pb.CopyToRequest(chunk=part)
        await c.stub.CopyTo(upload())
        assert c.agents["alpha"].copied == b"abcd"
        methods = [m for m, cid in c.agents["alpha"].seen if cid == made.id]
        assert methods == ["Create", "Top", "Diff", "Commit", "Stats", "Logs", "CopyFrom", "CopyTo"]
        missing = c.stub.Logs(c_pb.LogsRequest(container="nope"))
        assert (await failure(missing.read())).code() == grpc.StatusCode.NOT_FOUND
    with_cluster(etcd, ONE, body)


def test_attach_relays_both_ways_and_ends_with_the_agent(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        made = await c.create("a1")
        call = c.stub.Attach()
        await call.write(c_pb.AttachRequest(options=c_pb.AttachOptions(
            container="a1", stdin=True, stdout=True)))
        await call.write(c_pb.AttachRequest(stdin=b"hello"))
        assert (await call.read()).stdout == b"HELLO"
        await call.write(c_pb.AttachRequest(stdin=b"again"))
        assert (await call.read()).stdout == b"AGAIN"
        await call.write(c_pb.AttachRequest(close_stdin=True))
        assert (await call.read()).exit.code == 5
        assert await call.read() is grpc.aio.EOF
        assert await call.code() == grpc.StatusCode.OK
        assert ("Attach", made.id) in c.agents["alpha"].seen
        empty = c.stub.Attach()
        await empty.done_writing()
        refused = await failure(empty.read())
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    with_cluster(etcd, ONE, body)


def test_a_client_going_away_cancels_the_agents_call(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        await c.create("e1")
        agent = c.agents["alpha"]
        call = c.stub.Exec()
        await call.write(c_pb.ExecRequest(options=c_pb.ExecOptions(container="e1", cmd=["sh"])))
        assert (await call.read()).stdout == b"ready"
        call.cancel()
        await asyncio.wait_for(agent.hung_up.wait(), 5)
        agent.hung_up.clear()
        follow = c.stub.Logs(c_pb.LogsRequest(container="e1", follow=True))
        assert (await follow.read()).data == b"one\n"
        follow.cancel()
        await asyncio.wait_for(agent.hung_up.wait(), 5)
    with_cluster(etcd, ONE, body)


def test_prune_forgets_what_the_agents_pruned(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        await c.create("keep")
        await c.create("drop1")
        dropped = await c.create("drop2", node="beta")
        for name in ("keep", "drop1", "drop2"):
            await c.stub.Start(c_pb.StartContainerRequest(container=name))
        for name in ("drop1", "drop2"):
            await c.stub.Stop(c_pb.StopContainerRequest(container=name))
        reply = await c.stub.Prune(c_pb.PruneContainersRequest())
        assert dropped.id in reply.deleted and len(reply.deleted) == 2
        assert reply.space_reclaimed == 20
        listed = await c.stub.List(c_pb.ListContainersRequest(all=True))
        assert [x.name for x in listed.containers] == ["keep"]
    with_cluster(etcd, TWO, body)


def test_reports_from_agents(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        made = await c.create("r1")
        lost = await c.create("l1")
        node = c.ids["alpha"]
        await c.dispatcher.ReportContainers(nodes_pb2.ReportContainersRequest(
            node_id=node, containers=[nodes_pb2.ContainerReport(
                id=made.id, state=c_pb.ContainerState(status="running", sequence=7, pid=9))]))
        assert (await c.inspect("r1")).state.pid == 9
        # An older report does not move it back.
        await c.dispatcher.ReportContainers(nodes_pb2.ReportContainersRequest(
            node_id=node, containers=[nodes_pb2.ContainerReport(
                id=made.id, state=c_pb.ContainerState(status="created", sequence=2))]))
        assert (await c.inspect("r1")).state.status == "running"
        await c.dispatcher.ReportContainers(nodes_pb2.ReportContainersRequest(
            node_id=node, full=True, containers=[nodes_pb2.ContainerReport(
                id=made.id, state=c_pb.ContainerState(status="running", sequence=7))]))
        gone = await c.inspect(lost.id)
        assert (gone.state.status, gone.state.error) == ("dead", GONE)
        await c.dispatcher.ReportContainers(nodes_pb2.ReportContainersRequest(
            node_id=node, containers=[nodes_pb2.ContainerReport(id=made.id, removed=True)]))
        assert (await failure(c.inspect("r1"))).code() == grpc.StatusCode.NOT_FOUND
    with_cluster(etcd, ONE, body)
