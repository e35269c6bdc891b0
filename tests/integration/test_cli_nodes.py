"""Nodes through the installed `kran`: listing, inspecting, and what restarts do."""

from __future__ import annotations

import json
import time

from tests.integration.conftest import NODE_TTL


def node_row(cluster) -> dict[str, str]:
    rows = cluster.nodes()
    assert len(rows) == 1, rows
    return rows[0]


def inspect_node(cluster, key: str) -> dict:
    data = json.loads(cluster.ok("node", "inspect", key))
    assert isinstance(data, list) and len(data) == 1
    return data[0]


def test_node_ls(cluster):
    header, rows = cluster.table("node", "ls")
    assert header[:4] == ["ID", "HOSTNAME", "STATUS", "AVAILABILITY"]
    assert len(rows) == 1
    row = rows[0]
    assert row["HOSTNAME"] == cluster.hostname
    assert row["STATUS"] == "Ready"
    assert row["AVAILABILITY"] == "Active"
    assert row["ADDRESS"] == cluster.agent.address
    assert cluster.ok("node", "ls", "-q").split() == [row["ID"]]


def test_node_inspect_by_id_hostname_and_prefix(cluster):
    node_id = inspect_node(cluster, cluster.hostname)["ID"]
    for key in (node_id, cluster.hostname, node_id[:6]):
        node = inspect_node(cluster, key)
        assert node["ID"] == node_id
        assert node["Description"]["Hostname"] == cluster.hostname
        assert node["Status"]["State"] == "ready"
        assert node["Status"]["Addr"] == "127.0.0.1"
        assert node["Status"]["Endpoint"] == cluster.agent.address
        assert node["Description"]["Engine"]["Labels"] == cluster.labels
        assert node["Spec"]["Availability"] == "active"
        resources = node["Description"]["Resources"]
        assert resources["NanoCPUs"] > 0 and resources["MemoryBytes"] > 0
        assert node["Description"]["Engine"]["EngineVersion"]


def test_node_inspect_unknown(cluster):
    result = cluster.kran("node", "inspect", "no-such-node")
    assert result.code == 1
    assert "no-such-node" in result.err and len(result.err.strip().splitlines()) == 1


def test_agent_restart_keeps_the_node_id(cluster):
    node_id = inspect_node(cluster, cluster.hostname)["ID"]

    cluster.agent.kill()                        # SIGKILL: no goodbye to the controller
    killed = time.monotonic()
    cluster.wait_status("Down", timeout=NODE_TTL + 10)
    # The lease runs out within the TTL; etcd checks expiry about twice a second.
    assert time.monotonic() - killed <= NODE_TTL + 3

    cluster.start_agent()
    cluster.wait_status("Ready", timeout=30)
    assert len(cluster.nodes()) == 1
    assert inspect_node(cluster, cluster.hostname)["ID"] == node_id


def test_controller_restart_loses_nothing(cluster, hello_tar):
    image_id = cluster.ok("import", str(hello_tar), "survivor:1", "-c", 'CMD ["/hello"]').strip()
    node_id = inspect_node(cluster, cluster.hostname)["ID"]

    cluster.restart_controller()
    cluster.wait_status("Ready", timeout=30)
    assert len(cluster.nodes()) == 1
    assert inspect_node(cluster, cluster.hostname)["ID"] == node_id
    detail = json.loads(cluster.ok("image", "inspect", "survivor:1"))[0]
    assert detail["Id"] == image_id
    cluster.ok("rmi", "survivor:1")
