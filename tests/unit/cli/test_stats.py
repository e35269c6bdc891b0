"""docker stats rows (CPU % from two samples) and docker diff lines."""

from __future__ import annotations

from cli.stats import cpu_percent, diff_lines, stats_row, stats_table
from kran import containerinspect
from kran.api.v1 import containers_pb2 as pb

ID = "d" * 64


def sample(cpu, system, **more):
    return pb.ContainerStats(id=ID, name="web", cpu_usage_ns=cpu, system_cpu_ns=system,
                             online_cpus=2, **more)


def test_cpu_percent_needs_a_previous_sample():
    first = sample(1_000, 100_000)
    assert cpu_percent(containerinspect.stats(first)) == 0.0
    second = containerinspect.stats(sample(6_000, 200_000), first)
    assert cpu_percent(second) == 10.0  # 5000 / 100000 * 2 CPUs * 100


def test_stats_row_as_docker_prints_it():
    doc = containerinspect.stats(sample(6_000, 200_000, memory_usage=512 * 1024,
                                        memory_limit=64 << 20, pids=3, net_rx_bytes=1_500,
                                        net_tx_bytes=0, block_read_bytes=4_096_000,
                                        block_write_bytes=1_000), sample(1_000, 100_000))
    assert stats_row(doc) == ["dddddddddddd", "web", "10.00%", "512KiB / 64MiB", "0.78%",
                              "1.5kB / 0B", "4.1MB / 1kB", "3"]
    assert stats_table([doc]).splitlines()[0] == (
        "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O      "
        "BLOCK I/O     PIDS")


def test_diff_lines():
    assert diff_lines([{"Path": "/etc", "Kind": 0}, {"Path": "/etc/x", "Kind": 1},
                       {"Path": "/tmp/y", "Kind": 2}]) == "C /etc\nA /etc/x\nD /tmp/y\n"
