"""version/info rendering, node tables, and the one-line errors of the command."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from cli.main import cli
from cli.nodes import natural_key, nodes_table, pretty
from cli.system import client_version_block, goarch, info_text, server_version_block
from kran.api.v1 import nodes_pb2
from kran.client import Node
from kran.client.nodes import node_attrs


def test_version_blocks_align_values_at_column_20():
    client = client_version_block().splitlines()
    assert client[0] == "Client:"
    assert all(line.index(line.split()[-1]) >= 19 for line in client[1:])
    server = server_version_block({
        "Version": "0.1.0", "ApiVersion": "v1", "PythonVersion": "3.11.7", "GitCommit": "",
        "Os": "linux", "Arch": "x86_64", "KernelVersion": "6.1",
        "Components": [{"Name": "etcd", "Version": "3.4.23"}]})
    assert server.splitlines() == [
        "Server:", " kran-controller:",
        "  Version:          0.1.0", "  API version:      v1", "  Python version:   3.11.7",
        "  OS/Arch:          linux/amd64", "  Kernel version:   6.1",
        " etcd:", "  Version:          3.4.23"]
    assert goarch("aarch64") == "arm64"


def test_info_text():
    text = info_text({
        "ControllerAddress": "127.0.0.1:7640", "Etcd": {"Endpoints": ["127.0.0.1:2379"],
                                                        "Embedded": True},
        "Leader": "", "Nodes": 2, "NodesReady": 1, "NodesDown": 1, "Containers": 0,
        "ContainersRunning": 0, "ContainersPaused": 0, "ContainersStopped": 0, "Images": 3,
        "ServerVersion": "0.1.0"}, "127.0.0.1:7640")
    assert " Nodes: 2\n  Ready: 1\n  Down: 1\n" in text
    assert " Images: 3\n" in text and " etcd: embedded\n  Endpoints: 127.0.0.1:2379\n" in text


def _node(name, status=nodes_pb2.NODE_STATUS_READY):
    message = nodes_pb2.Node(
        id=f"id-{name}", status=status, availability=nodes_pb2.NODE_AVAILABILITY_DRAIN,
        description=nodes_pb2.NodeDescription(hostname=name, address="127.0.0.1:7641", cpus=2,
                                              memory_bytes=8 << 30, agent_version="0.1.0"))
    return Node(node_attrs(message), None, None)


def test_node_attrs_docker_shape():
    attrs = _node("n1").attrs
    assert attrs["Status"] == {"State": "ready", "Addr": "127.0.0.1", "Endpoint": "127.0.0.1:7641"}
    assert attrs["Spec"]["Availability"] == "drain"
    assert attrs["Description"]["Resources"] == {"NanoCPUs": 2_000_000_000,
                                                 "MemoryBytes": 8 << 30}
    assert attrs["CreatedAt"] == "0001-01-01T00:00:00Z"


def test_nodes_table_sorted_naturally():
    out = nodes_table([_node("node10"), _node("node2", nodes_pb2.NODE_STATUS_DOWN)])
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ID", "HOSTNAME", "STATUS", "AVAILABILITY"]
    assert lines[1].split() == ["id-node2", "node2", "Down", "Drain", "127.0.0.1:7641", "0.1.0"]
    assert lines[2].split()[1] == "node10"
    assert natural_key("a2") < natural_key("a10")
    assert "Memory:\t\t8GiB" in pretty(_node("n1").attrs)


def test_unreachable_controller_is_one_line_exit_1():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(cli, ["-H", f"127.0.0.1:{port}", "images"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Cannot connect to the kran controller at 127.0.0.1:{port}. "
        "Is kran-controller running?")


def test_invalid_reference_refused_before_any_call():
    result = CliRunner().invoke(cli, ["-H", "127.0.0.1:1", "tag", "busybox", "Bad:1"])
    assert result.exit_code == 1
    assert result.output.startswith('Error parsing reference: "Bad:1" is not a valid')


def test_usage_error_exit_2():
    assert CliRunner().invoke(cli, ["rmi"]).exit_code == 2
