"""`kran node update/rm`, node inspect's allocation, run's placement flags and the SDK beneath.

A toy controller (Nodes, Containers.Create) answers from memory; what is
tested is what the CLI and SDK send and show.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import cli
from cli.nodes import pretty
from cli.run import create_kwargs
from kran import errors
from kran.api.v1 import containers_pb2, containers_pb2_grpc, nodes_pb2, nodes_pb2_grpc
from kran.client import Client
from kran.client.nodes import node_attrs
from tests.servers import serving

ID = "a" * 64


class Nodes(nodes_pb2_grpc.NodesServicer):
    """One Ready node, h1, with labels {"zone": "a"}; remembers the requests."""

    def __init__(self) -> None:
        self.updates: list[nodes_pb2.UpdateNodeRequest] = []
        self.removed: list[nodes_pb2.RemoveNodeRequest] = []

    def _node(self) -> nodes_pb2.Node:
        return nodes_pb2.Node(id="n" * 25, labels={"zone": "a"},
                              description=nodes_pb2.NodeDescription(
                                  hostname="h1", address="10.0.0.1:7641", cpus=2,
                                  memory_bytes=1 << 30))

    async def Inspect(self, request, context):
        if request.node != "h1":
            raise errors.NotFound(f"node {request.node} not found")
        return self._node()

    async def Update(self, request, context):
        self.updates.append(request)
        if "nope" in request.label_rm:
            raise errors.InvalidArgument("key nope doesn't exist in node's labels")
        return self._node()

    async def Remove(self, request, context):
        self.removed.append(request)
        if request.node == "h1" and not request.force:
            raise errors.FailedPrecondition("node h1 is not down and can't be removed")
        if request.node not in ("h1", "h2", "n" * 25):
            raise errors.NotFound(f"node {request.node} not found")
        return nodes_pb2.RemoveNodeResponse()


class Containers(containers_pb2_grpc.ContainersServicer):
    def __init__(self) -> None:
        self.created: list[containers_pb2.CreateContainerRequest] = []

    async def Create(self, request, context):
        self.created.append(request)
        return containers_pb2.Container(id=ID, name="x", config=request.config)


@pytest.fixture(scope="module")
def served():
    nodes, containers = Nodes(), Containers()
    with serving([(nodes_pb2_grpc.add_NodesServicer_to_server, nodes, "kran.api.v1.Nodes"),
                  (containers_pb2_grpc.add_ContainersServicer_to_server, containers,
                   "kran.api.v1.Containers")]) as address:
        yield address, nodes, containers


def kran(address: str, *args: str):
    return CliRunner().invoke(cli, ["-H", address, *args])


def test_node_update_sends_availability_and_labels(served):
    address, nodes, _ = served
    result = kran(address, "node", "update", "--availability", "drain", "--label-add", "zone=b",
                  "--label-add", "ssd", "--label-rm", "old", "h1")
    assert result.exit_code == 0 and result.output == "h1\n"
    request = nodes.updates[-1]
    assert request.node == "h1" and request.availability_set
    assert request.availability == nodes_pb2.NODE_AVAILABILITY_DRAIN
    assert dict(request.label_add) == {"zone": "b", "ssd": ""} and list(request.label_rm) == ["old"]
    labels_only = kran(address, "node", "update", "--label-add", "x=1", "h1")
    assert labels_only.exit_code == 0 and not nodes.updates[-1].availability_set


def test_node_update_refusals(served):
    address, nodes, _ = served
    sent = len(nodes.updates)
    bad = kran(address, "node", "update", "--availability", "asleep", "h1")
    assert bad.exit_code == 1
    assert "invalid availability 'asleep': use active, pause or drain" in bad.output
    assert len(nodes.updates) == sent   # refused before any call
    missing = kran(address, "node", "update", "--label-rm", "nope", "h1")
    assert missing.exit_code == 1
    assert "Error response from daemon: key nope doesn't exist in node's labels" in missing.output
    usage = kran(address, "node", "update")
    assert usage.exit_code == 1


def test_node_rm(served):
    address, nodes, _ = served
    refused = kran(address, "node", "rm", "h1", "h2")
    assert refused.exit_code == 1
    assert refused.stdout == "h2\n"
    assert "node h1 is not down and can't be removed" in refused.stderr
    forced = kran(address, "node", "rm", "-f", "h1")
    assert forced.exit_code == 0 and forced.output == "h1\n"
    assert nodes.removed[-1].force


def test_sdk_node_update_and_remove(served):
    address, nodes, _ = served
    with Client(address) as client:
        node = client.nodes.get("h1")
        assert node.attrs["Allocated"] == {"NanoCPUs": 0, "MemoryBytes": 0, "Containers": 0,
                                           "Ports": []}
        node.update({"Availability": "pause", "Labels": {"role": "db"}})
        request = nodes.updates[-1]
        assert request.availability == nodes_pb2.NODE_AVAILABILITY_PAUSE
        assert dict(request.label_add) == {"role": "db"} and list(request.label_rm) == ["zone"]
        with pytest.raises(errors.InvalidArgument):
            node.update({"Role": "manager"})
        node.remove(force=True)
        assert nodes.removed[-1].node == "n" * 25 and nodes.removed[-1].force


def test_pretty_shows_the_allocation():
    message = nodes_pb2.Node(id="n1", description=nodes_pb2.NodeDescription(hostname="h1"),
                             allocated=nodes_pb2.NodeAllocation(
                                 nano_cpus=1_500_000_000, memory_bytes=512 << 20, containers=3,
                                 ports=["8080/tcp"]))
    text = pretty(node_attrs(message))
    assert "Allocated:\n CPUs:\t\t\t1.5\n Memory:\t\t512MiB\n Containers:\t\t3\n" \
           " Ports:\t\t\t8080/tcp\n" in text
    assert "Allocated:" not in pretty(node_attrs(nodes_pb2.Node(id="n2")))


def test_run_placement_flags_reach_the_request(served):
    address, _, containers = served
    result = kran(address, "create", "--constraint", "node.labels.zone==a", "--constraint",
                  "node.hostname!=h2", "--reserve-cpus", "1.5", "--reserve-memory", "64m",
                  "--node", "h1", "busybox")
    assert result.exit_code == 0, result.output
    request = containers.created[-1]
    assert list(request.placement.constraints) == ["node.labels.zone==a", "node.hostname!=h2"]
    assert request.placement.reserve_nano_cpus == 1_500_000_000
    assert request.placement.reserve_memory_bytes == 64 << 20
    assert request.node == "h1"


def test_bad_reservation_flags_exit_125():
    result = CliRunner().invoke(cli, ["run", "--reserve-cpus", "lots", "busybox"])
    assert result.exit_code == 125
    assert 'invalid argument "lots" for "--reserve-cpus" flag' in result.output
    result = CliRunner().invoke(cli, ["run", "--reserve-memory", "12q", "busybox"])
    assert result.exit_code == 125 and "invalid size: '12q'" in result.output


def test_create_kwargs_carry_the_placement():
    kwargs = create_kwargs({"env": (), "env_file": (), "label": (), "restart": "no",
                            "constraint": ("node.id==x",), "reserve_cpus": 250_000_000,
                            "reserve_memory": 1 << 20})
    assert kwargs["constraints"] == ["node.id==x"]
    assert kwargs["reserve_cpus"] * 4 == 1 and kwargs["reserve_memory"] == 1 << 20
