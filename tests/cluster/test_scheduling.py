"""Scheduling on the 3-host lab: spread, constraints and labels, pause and drain, reservations.

Every container here is plain (`kran run -d`); `clean_lab` removes them, and
each test puts back the node availability and labels it changes.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.usefixtures("clean_lab")


def run(kran, *flags: str, host: str | None = None):
    """`kran run -d FLAGS busybox sleep 300`, through the given controller if any."""
    where = ("-H", host) if host else ()
    return kran(*where, "run", "-d", *flags, "busybox", "sleep", "300")


def started(kran, *flags: str) -> str:
    """Run a container that must be placed; its id."""
    result = run(kran, *flags)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def node_of(kran, container: str) -> str:
    result = kran("inspect", "-f", "{{.Node.Name}}", container)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def node(kran, name: str) -> dict:
    result = kran("node", "inspect", name)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]


def set_availability(kran, name: str, availability: str) -> None:
    result = kran("node", "update", "--availability", availability, name)
    assert result.returncode == 0 and result.stdout.strip() == name, result.stderr


def test_containers_spread_evenly_over_the_hosts(lab, kran):
    assert kran("ps", "-aq").stdout.strip() == "", "the lab should start without containers"
    containers = [started(kran) for _ in range(6)]
    assert Counter(node_of(kran, c) for c in containers) == {"h1": 2, "h2": 2, "h3": 2}
    assert node(kran, "h1")["Allocated"]["Containers"] == 2


def test_a_hostname_constraint_keeps_them_on_one_host(lab, kran):
    containers = [started(kran, "--constraint", "node.hostname==h2") for _ in range(3)]
    assert {node_of(kran, c) for c in containers} == {"h2"}
    shown = json.loads(kran("inspect", containers[0]).stdout)[0]
    assert shown["Placement"]["Constraints"] == ["node.hostname==h2"]


def test_labels_set_with_node_update_steer_placement(lab, kran):
    update = kran("node", "update", "--label-add", "zone=east", "--label-add", "ssd", "h3")
    assert update.returncode == 0, update.stderr
    try:
        assert node(kran, "h3")["Spec"]["Labels"] == {"zone": "east", "ssd": ""}
        east = [started(kran, "--constraint", "node.labels.zone==east") for _ in range(2)]
        assert {node_of(kran, c) for c in east} == {"h3"}
        elsewhere = [started(kran, "--constraint", "node.labels.zone!=east") for _ in range(4)]
        assert {node_of(kran, c) for c in elsewhere} == {"h1", "h2"}
        missing = kran("node", "update", "--label-rm", "rack", "h3")
        assert missing.returncode == 1
        assert "key rack doesn't exist in node's labels" in missing.stderr
    finally:
        kran("node", "update", "--label-rm", "zone", "--label-rm", "ssd", "h3")
    assert node(kran, "h3")["Spec"]["Labels"] == {}


def test_an_unsatisfiable_constraint_says_why(lab, kran):
    result = run(kran, "--constraint", "node.labels.zone==nowhere")
    assert result.returncode == 125
    assert "no node satisfies node.labels.zone==nowhere: 3 nodes, 0 match" in result.stderr
    bad = run(kran, "--constraint", "node.labels.zone=nowhere")
    assert bad.returncode == 125 and "invalid constraint" in bad.stderr
    assert kran("ps", "-aq").stdout.strip() == ""


def test_a_paused_host_takes_no_new_containers(lab, kran):
    set_availability(kran, "h1", "pause")
    try:
        assert "Pause" in kran("node", "ls").stdout
        containers = [started(kran) for _ in range(4)]
        assert Counter(node_of(kran, c) for c in containers) == {"h2": 2, "h3": 2}
        pinned = run(kran, "--node", "h1")
        assert pinned.returncode == 125 and "is paused" in pinned.stderr
    finally:
        set_availability(kran, "h1", "active")
    assert node_of(kran, started(kran)) == "h1"


def test_draining_a_host_keeps_its_plain_containers(lab, kran):
    kept = started(kran, "--node", "h2")
    set_availability(kran, "h2", "drain")
    try:
        state = json.loads(kran("inspect", kept).stdout)[0]
        assert state["State"]["Status"] == "running" and state["Node"]["Name"] == "h2"
        assert {node_of(kran, started(kran)) for _ in range(3)} <= {"h1", "h3"}
    finally:
        set_availability(kran, "h2", "active")


def test_a_ready_node_is_not_removed_without_force(lab, kran):
    result = kran("node", "rm", "h1")
    assert result.returncode == 1
    assert "node h1 is not down and can't be removed" in result.stderr
    assert node(kran, "h1")["Status"]["State"] == "ready"


def test_reservations_bigger_than_any_host_are_refused(lab, kran):
    result = run(kran, "--reserve-memory", "100000g")
    assert result.returncode == 125
    assert "of memory free to reserve: 3 nodes, 0 match" in result.stderr
    limit = run(kran, "--cpus", "4096")
    assert limit.returncode == 125 and "CPUs for the limit: 3 nodes, 0 match" in limit.stderr


def test_two_clients_racing_for_the_last_room_on_a_host(lab, kran):
    cpus = node(kran, "h1")["Description"]["Resources"]["NanoCPUs"] // 1_000_000_000
    endpoints = lab.controller_endpoints
    flags = ("--node", "h1", "--reserve-cpus", str(cpus))
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda host: run(kran, *flags, host=host),
                                [endpoints[0], endpoints[-1]]))
    winners = [r for r in results if r.returncode == 0]
    losers = [r for r in results if r.returncode != 0]
    assert len(winners) == 1 and len(losers) == 1, [r.stderr for r in results]
    assert losers[0].returncode == 125
    assert f"does not have {cpus} CPUs free to reserve" in losers[0].stderr
    allocated = node(kran, "h1")["Allocated"]
    assert allocated["NanoCPUs"] == cpus * 1_000_000_000 and allocated["Containers"] == 1
    # Removing the winner gives the room back.
    assert kran("rm", "-f", winners[0].stdout.strip()).returncode == 0
    assert node(kran, "h1")["Allocated"]["NanoCPUs"] == 0
    assert started(kran, *flags)
