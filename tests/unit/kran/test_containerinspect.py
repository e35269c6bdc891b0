"""Docker-shaped container views: status text, command, inspect, list entry, stats."""

from __future__ import annotations

import pytest

from kran import containerinspect
from kran.api.v1 import containers_pb2

NOW = 1_700_000_000
ID = "c" * 64


def state(status, started=0, finished=0, code=0, **kwargs):
    s = containers_pb2.ContainerState(status=status, exit_code=code, **kwargs)
    s.started_at.seconds = started
    s.finished_at.seconds = finished
    return s


@pytest.mark.parametrize("st, text", [
    (state("created"), "Created"),
    (state("running", started=NOW - 3), "Up 3 seconds"),
    (state("running", started=NOW - 7200), "Up 2 hours"),
    (state("paused", started=NOW - 3), "Up 3 seconds (Paused)"),
    (state("restarting", started=NOW - 10, finished=NOW - 2, code=1),
     "Restarting (1) 2 seconds ago"),
    (state("exited", started=NOW - 600, finished=NOW - 300, code=0), "Exited (0) 5 minutes ago"),
    (state("exited", started=NOW - 600, finished=NOW - 1, code=137), "Exited (137) 1 second ago"),
    (state("exited"), "Created"),
    (state("removing", started=NOW - 5), "Removal In Progress"),
    (state("dead", started=NOW - 5), "Dead"),
])
def test_status_text_as_moby(st, text):
    assert containerinspect.status_text(st, NOW) == text


def test_command_quotes_args_with_spaces():
    assert containerinspect.command_text("sh", ["-c", "echo hi"]) == "sh -c 'echo hi'"
    assert containerinspect.command_text("/hello", []) == "/hello"


def container(**config):
    c = containers_pb2.Container(
        id=ID, name="web", node_id="n1", node_name="node-1", image_id="sha256:" + "e" * 64,
        path="sh", args=["-c", "echo hi"],
        config=containers_pb2.ContainerConfig(image="busybox", cmd=["sh", "-c", "echo hi"],
                                              env=["PATH=/bin"], labels={"a": "b"}, **config),
        state=state("exited", started=NOW - 60, finished=NOW - 30, code=2, restart_count=1))
    c.created.seconds = NOW - 120
    return c


def test_inspect_has_what_docker_clients_read():
    doc = containerinspect.inspect(container(memory_bytes=64 << 20, nano_cpus=1_500_000_000))
    assert doc["Id"] == ID and doc["Name"] == "/web"
    assert doc["Path"] == "sh" and doc["Args"] == ["-c", "echo hi"]
    assert doc["Created"] == "2023-11-14T22:11:20Z"
    assert doc["State"] == {
        "Status": "exited", "Running": False, "Paused": False, "Restarting": False,
        "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 2, "Error": "",
        "StartedAt": "2023-11-14T22:12:20Z", "FinishedAt": "2023-11-14T22:12:50Z"}
    assert doc["RestartCount"] == 1
    assert doc["HostConfig"]["LogConfig"]["Type"] == "json-file"
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert doc["HostConfig"]["Memory"] == 64 << 20
    assert doc["HostConfig"]["NanoCpus"] == 1_500_000_000
    assert doc["HostConfig"]["PidsLimit"] is None
    assert doc["Config"]["Hostname"] == ID[:12]
    assert doc["Config"]["Entrypoint"] is None
    assert doc["Config"]["Labels"] == {"a": "b"}
    assert doc["Node"] == {"ID": "n1", "Name": "node-1"}
    assert doc["Placement"] == {"Constraints": [], "Reservations": {"NanoCPUs": 0, "MemoryBytes": 0},
                                "Strategy": ""}


def test_inspect_running_and_paused_count_as_running():
    c = container()
    c.state.CopyFrom(state("paused", started=NOW - 5))
    s = containerinspect.inspect(c)["State"]
    assert s["Running"] and s["Paused"]
    assert s["FinishedAt"] == "0001-01-01T00:00:00Z"


def test_summary_is_the_list_entry():
    entry = containerinspect.summary(container(), NOW)
    assert entry["Names"] == ["/web"]
    assert entry["Image"] == "busybox"
    assert entry["Command"] == "sh -c 'echo hi'"
    assert entry["Created"] == NOW - 120
    assert entry["State"] == "exited"
    assert entry["Status"] == "Exited (2) 30 seconds ago"


def test_stats_carries_previous_sample_as_precpu():
    first = containers_pb2.ContainerStats(id=ID, name="web", cpu_usage_ns=100,
                                          system_cpu_ns=1000, online_cpus=2)
    second = containers_pb2.ContainerStats(id=ID, name="web", cpu_usage_ns=300,
                                           system_cpu_ns=2000, online_cpus=2, memory_usage=10,
                                           memory_limit=100, pids=3, block_read_bytes=7)
    doc = containerinspect.stats(second, first)
    assert doc["name"] == "/web"
    assert doc["cpu_stats"]["cpu_usage"]["total_usage"] == 300
    assert doc["precpu_stats"]["system_cpu_usage"] == 1000
    assert doc["pids_stats"]["current"] == 3
    assert doc["blkio_stats"]["io_service_bytes_recursive"][0] == {
        "major": 0, "minor": 0, "op": "read", "value": 7}
    assert containerinspect.stats(first)["precpu_stats"]["system_cpu_usage"] == 0
