"""kran-controller and kran-agent as real processes, driven through gRPC stubs.

Each test starts its own controller (embedded etcd on free loopback ports,
unless it says otherwise) and agents, with --node-ttl 3 so that Down comes
quickly, and kills every process it started by pid.
"""

from __future__ import annotations

import io
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from kran.api.v1 import (images_pb2, images_pb2_grpc, nodes_pb2, nodes_pb2_grpc, system_pb2,
                         system_pb2_grpc)
from tests.procs import Controller, Processes, free_port, pid_alive, wait_until

TTL = 3
READY, DOWN = nodes_pb2.NODE_STATUS_READY, nodes_pb2.NODE_STATUS_DOWN


@pytest.fixture
def tmp() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kran-cp-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def procs(tmp: Path) -> Iterator[Processes]:
    group = Processes(tmp)
    yield group
    group.cleanup()


def channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address)


def list_nodes(controller: Controller) -> list[nodes_pb2.Node]:
    with channel(controller.address) as ch:
        return list(nodes_pb2_grpc.NodesStub(ch).List(nodes_pb2.ListNodesRequest(),
                                                      timeout=10).nodes)


def wait_node(controller: Controller, status: int, timeout: float = 20.0,
              hostname: str | None = None) -> nodes_pb2.Node:
    def find() -> nodes_pb2.Node | None:
        for node in list_nodes(controller):
            if node.status == status and hostname in (None, node.description.hostname):
                return node
        return None
    return wait_until(find, timeout, what=f"a node with status {status}")


def rpc_error(call, *args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, timeout=10)
    return caught.value


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return reply.read().decode()


def test_agent_registers_and_is_ready(procs: Processes, tmp: Path) -> None:
    controller = procs.controller(tmp / "controller", node_ttl=TTL)
    agent = procs.agent(tmp / "agent", controller.address, hostname="node-1",
                        labels={"zone": "a"})
    node = wait_node(controller, READY)
    assert node.id == (tmp / "agent" / "node_id").read_text().strip()
    assert len(node.id) == 25
    described = node.description
    assert described.hostname == "node-1"
    assert described.address == agent.address
    assert described.cpus >= 1 and described.memory_bytes > 0
    assert described.os == "linux" and described.architecture in ("amd64", "arm64")
    assert described.agent_version and described.kernel_version
    assert dict(described.labels) == {"zone": "a"}
    assert node.availability == nodes_pb2.NODE_AVAILABILITY_ACTIVE
    assert node.created_at.seconds > 0 and node.updated_at.seconds > 0

    with channel(controller.address) as ch:
        nodes = nodes_pb2_grpc.NodesStub(ch)
        for ref in (node.id, node.id[:6], "node-1"):
            assert nodes.Inspect(nodes_pb2.InspectNodeRequest(node=ref)).id == node.id
        err = rpc_error(nodes.Inspect, nodes_pb2.InspectNodeRequest(node="nosuch"))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        assert err.details() == "node nosuch not found"
        info = system_pb2_grpc.SystemStub(ch).Info(system_pb2.InfoRequest(), timeout=10)
    assert (info.nodes, info.nodes_ready, info.nodes_down) == (1, 1, 0)
    assert info.embedded_etcd and info.etcd_endpoints == [controller.etcd_endpoint]
    assert info.controller_address == controller.address and info.containers == 0

    with channel(agent.address) as ch:
        agent_info = system_pb2_grpc.AgentStub(ch).Info(system_pb2.AgentInfoRequest(), timeout=10)
    assert agent_info.node_id == node.id
    assert agent_info.state_dir == str(tmp / "agent") and agent_info.version
    assert info.images == agent_info.images


def test_killed_agent_goes_down_and_returns_with_same_id(procs: Processes, tmp: Path) -> None:
    controller = procs.controller(tmp / "controller", node_ttl=TTL)
    agent = procs.agent(tmp / "agent", controller.address)
    ready = wait_node(controller, READY)

    agent.kill()
    killed = time.monotonic()
    down = wait_node(controller, DOWN, timeout=TTL + 5)
    assert down.id == ready.id
    assert time.monotonic() - killed <= TTL + 2

    procs.agent(tmp / "agent", controller.address)
    again = wait_node(controller, READY)
    assert again.id == ready.id
    assert len(list_nodes(controller)) == 1


def test_stopped_agent_exits_cleanly_and_goes_down(procs: Processes, tmp: Path) -> None:
    controller = procs.controller(tmp / "controller", node_ttl=TTL)
    agent = procs.agent(tmp / "agent", controller.address)
    wait_node(controller, READY)
    assert agent.stop() == 0
    stopped = time.monotonic()
    wait_node(controller, DOWN, timeout=TTL + 5)
    assert time.monotonic() - stopped <= TTL + 2
    assert "Traceback" not in agent.output()


def test_controller_restart_keeps_nodes(procs: Processes, tmp: Path) -> None:
    ports = {"port": free_port(), "client_port": free_port(), "peer_port": free_port()}
    controller = procs.controller(tmp / "controller", node_ttl=TTL, **ports)
    procs.agent(tmp / "agent", controller.address)
    node = wait_node(controller, READY)
    etcd_pid = int((tmp / "controller" / "etcd" / "etcd.pid").read_text())

    assert controller.stop() == 0
    assert not pid_alive(etcd_pid), "the embedded etcd outlived its controller"
    assert "Traceback" not in controller.output()

    controller = procs.controller(tmp / "controller", node_ttl=TTL, **ports)
    assert [n.id for n in list_nodes(controller)] == [node.id]
    # The agent kept heartbeating (or registered again) while the controller was away.
    assert wait_node(controller, READY).id == node.id
    time.sleep(TTL + 1)
    assert wait_node(controller, READY, timeout=1).id == node.id


def test_controller_killed_takes_embedded_etcd_along(procs: Processes, tmp: Path) -> None:
    ports = {"port": free_port(), "client_port": free_port(), "peer_port": free_port()}
    controller = procs.controller(tmp / "controller", **ports)
    etcd_pid = int((tmp / "controller" / "etcd" / "etcd.pid").read_text())
    assert pid_alive(etcd_pid)
    controller.kill()
    wait_until(lambda: not pid_alive(etcd_pid), 10, what="the embedded etcd to die")
    # The stale pid file does not stop the next start.
    controller = procs.controller(tmp / "controller", **ports)
    assert list_nodes(controller) == []


def test_embedded_etcd_port_in_use_is_a_clear_error(procs: Processes, tmp: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        controller = procs.controller(tmp / "controller", client_port=busy, wait=False)
        assert controller.process.wait(timeout=30) == 1
    output = controller.output()
    assert f"port 127.0.0.1:{busy}" in output and "already in use" in output
    assert "--etcd-client-port" in output and "Traceback" not in output


def test_external_etcd(procs: Processes, tmp: Path) -> None:
    etcd = procs.etcd(tmp / "etcd")
    controller = procs.controller(tmp / "controller", node_ttl=TTL, etcd=etcd.endpoint)
    procs.agent(tmp / "agent", controller.address)
    wait_node(controller, READY)
    assert not (tmp / "controller" / "etcd").exists()
    with channel(controller.address) as ch:
        system = system_pb2_grpc.SystemStub(ch)
        info = system.Info(system_pb2.InfoRequest(), timeout=10)
        version = system.Version(system_pb2.VersionRequest(), timeout=10)
    assert not info.embedded_etcd and list(info.etcd_endpoints) == [etcd.endpoint]
    assert version.etcd_version.startswith("3.") and version.api_version == "v1"


def test_external_etcd_down_is_unavailable_until_it_comes(procs: Processes, tmp: Path) -> None:
    client_port = free_port()
    endpoint = f"127.0.0.1:{client_port}"
    controller = procs.controller(tmp / "controller", node_ttl=TTL, etcd=endpoint)
    with channel(controller.address) as ch:
        nodes = nodes_pb2_grpc.NodesStub(ch)
        err = rpc_error(nodes.List, nodes_pb2.ListNodesRequest())
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert err.details() == f"etcd at {endpoint} is unavailable"
        err = rpc_error(nodes_pb2_grpc.DispatcherStub(ch).Register, nodes_pb2.RegisterRequest(
            node_id="a" * 25, description=nodes_pb2.NodeDescription(
                hostname="h", address="127.0.0.1:1")))
        assert err.code() == grpc.StatusCode.UNAVAILABLE

        procs.etcd(tmp / "etcd", client_port=client_port)
        wait_until(lambda: nodes.List(nodes_pb2.ListNodesRequest(), timeout=5) is not None,
                   15, what="the controller to reach etcd")
    assert controller.alive() and "Traceback" not in controller.output()


def test_health_and_reflection(procs: Processes, tmp: Path) -> None:
    controller = procs.controller(tmp / "controller")
    agent = procs.agent(tmp / "agent", controller.address)
    expected = {
        controller.address: {"kran.api.v1.Nodes", "kran.api.v1.Dispatcher",
                             "kran.api.v1.Images", "kran.api.v1.System"},
        agent.address: {"kran.api.v1.Images", "kran.api.v1.Agent"},
    }
    for address, services in expected.items():
        with channel(address) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            for service in ("", *services):
                reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            reflection = reflection_pb2_grpc.ServerReflectionStub(ch)
            replies = reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
            listed = {s.name for r in replies for s in r.list_services_response.service}
            assert services <= listed and "grpc.health.v1.Health" in listed


def test_metrics(procs: Processes, tmp: Path) -> None:
    controller = procs.controller(tmp / "controller", node_ttl=TTL)
    agent = procs.agent(tmp / "agent", controller.address)
    wait_node(controller, READY)
    wait_until(lambda: 'kran_nodes{status="ready"} 1.0' in metrics(controller.metrics_port),
               10, what="kran_nodes to count the node")
    text = metrics(controller.metrics_port)
    assert 'kran_up{component="controller"} 1.0' in text
    assert 'kran_nodes{status="down"} 0.0' in text
    assert "kran_etcd_request_seconds_bucket" in text
    assert 'grpc_method="/kran.api.v1.Dispatcher/Register"' in text
    text = wait_until(lambda: (t := metrics(agent.metrics_port)) and "kran_images " in t and t,
                      10, what="the agent's image gauges")
    assert 'kran_up{component="agent"} 1.0' in text
    assert "kran_image_bytes " in text


def test_dispatcher_refuses_bad_requests(procs: Processes, tmp: Path) -> None:
    controller = procs.controller(tmp / "controller")
    with channel(controller.address) as ch:
        dispatcher = nodes_pb2_grpc.DispatcherStub(ch)
        err = rpc_error(dispatcher.Register, nodes_pb2.RegisterRequest(
            node_id="Not-An-Id", description=nodes_pb2.NodeDescription(
                hostname="h", address="127.0.0.1:1")))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "Not-An-Id" in err.details()
        err = rpc_error(dispatcher.Heartbeat, nodes_pb2.HeartbeatRequest(
            node_id="b" * 25, lease_id=12345))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        assert "register again" in err.details()


def test_images_need_a_ready_node_and_name_the_unreachable_one(procs: Processes,
                                                               tmp: Path) -> None:
    controller = procs.controller(tmp / "controller", node_ttl=TTL)
    with channel(controller.address) as ch:
        images = images_pb2_grpc.ImagesStub(ch)
        err = rpc_error(images.List, images_pb2.ListImagesRequest())
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert err.details() == "no node is ready"

        # A node registers, then its agent is gone: calls name it and its address.
        ghost = f"127.0.0.1:{free_port()}"
        dispatcher = nodes_pb2_grpc.DispatcherStub(ch)
        dispatcher.Register(nodes_pb2.RegisterRequest(
            node_id="c" * 25, description=nodes_pb2.NodeDescription(
                hostname="ghost", address=ghost)), timeout=10)
        err = rpc_error(images.List, images_pb2.ListImagesRequest())
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert err.details().startswith(f"node ghost ({ghost}) is unreachable")

        err = rpc_error(images.List, images_pb2.ListImagesRequest(node="nosuch"))
        assert err.code() == grpc.StatusCode.NOT_FOUND


def _rootfs_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"hello from kran\n"
        member = tarfile.TarInfo("hello.txt")
        member.size, member.mtime = len(data), 1_700_000_000
        tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def test_images_go_through_the_controller_to_real_agents(procs: Processes, tmp: Path) -> None:
    controller = procs.controller(tmp / "controller", node_ttl=TTL)
    procs.agent(tmp / "agent-a", controller.address, hostname="node-a")
    agent_b = procs.agent(tmp / "agent-b", controller.address, hostname="node-b")
    wait_until(lambda: sum(n.status == READY for n in list_nodes(controller)) == 2, 20,
               what="two Ready nodes")
    archive = _rootfs_tar()

    def chunks():
        yield images_pb2.ImportImageRequest(header=images_pb2.ImportHeader(
            reference="hello:1", node="node-b"))
        for start in range(0, len(archive), 1024):
            yield images_pb2.ImportImageRequest(chunk=archive[start:start + 1024])

    with channel(controller.address) as ch:
        images = images_pb2_grpc.ImagesStub(ch)
        imported = images.Import(chunks(), timeout=30).image
        listed = images.List(images_pb2.ListImagesRequest(), timeout=10).images
        assert [(i.id, i.node_name) for i in listed] == [(imported.id, "node-b")]
        node_b = next(n for n in list_nodes(controller) if n.description.hostname == "node-b")
        assert listed[0].node_id == node_b.id and "hello:1" in listed[0].repo_tags

        detail = images.Inspect(images_pb2.InspectImageRequest(reference="hello:1"), timeout=10)
        assert detail.image.node_name == "node-b" and detail.image.id == imported.id

        images.Tag(images_pb2.TagImageRequest(source="hello:1", target="hello:2"), timeout=10)
        saved = b"".join(c.data for c in images.Save(
            images_pb2.SaveImagesRequest(references=["hello:2"]), timeout=30))
        assert saved[257:262] == b"ustar"  # a tar archive came through

        info = system_pb2_grpc.SystemStub(ch).Info(system_pb2.InfoRequest(), timeout=10)
        assert info.images == 1
        removed = images.Remove(images_pb2.RemoveImageRequest(reference="hello:2"), timeout=30)
        assert [r.untagged for r in removed.removed if r.untagged] == ["hello:2"]

        err = rpc_error(images.Inspect, images_pb2.InspectImageRequest(reference="nosuch:1"))
        assert err.code() == grpc.StatusCode.NOT_FOUND

        agent_b.kill()
        wait_node(controller, DOWN, timeout=TTL + 5, hostname="node-b")
        assert list(images.List(images_pb2.ListImagesRequest(), timeout=10).images) == []
