"""What the agent reports about its host, and the queue of container reports."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.registration import ContainerReports, cpu_count, describe_host, memory_bytes
from kran.api.v1 import containers_pb2, nodes_pb2


def test_memory_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemFree:  10 kB\nMemTotal:       2048 kB\n")
    assert memory_bytes(str(meminfo)) == 2048 * 1024
    assert memory_bytes(str(tmp_path / "missing")) == 0
    assert memory_bytes() > 0


def test_describe_host() -> None:
    desc = describe_host("h1", "10.0.0.1:7641", {"zone": "a"})
    assert desc.hostname == "h1" and desc.address == "10.0.0.1:7641"
    assert desc.cpus == cpu_count() >= 1
    assert desc.os == "linux" and desc.architecture in ("amd64", "arm64")
    assert desc.kernel_version and desc.agent_version and dict(desc.labels) == {"zone": "a"}


def test_container_reports_keep_the_newest_per_container() -> None:
    def report(cid: str, sequence: int, removed: bool = False) -> nodes_pb2.ContainerReport:
        return nodes_pb2.ContainerReport(id=cid, state=containers_pb2.ContainerState(sequence=sequence),
                                         removed=removed)

    async def scenario() -> None:
        reports = ContainerReports(snapshot=lambda: [report("a", 9)])
        reports.put(report("a", 1))
        reports.put(report("b", 1))
        reports.put(report("a", 2))
        batch = await reports.take()
        assert [(r.id, r.state.sequence) for r in batch] == [("a", 2), ("b", 1)]
        reports.put(report("b", 2, removed=True))
        reports.give_back(batch)  # the send failed; b's newer report stays
        batch = await asyncio.wait_for(reports.take(), 1)
        assert sorted((r.id, r.state.sequence, r.removed) for r in batch) == [("a", 2, False), ("b", 2, True)]
        reports.put(report("c", 1))
        assert [r.id for r in reports.full()] == ["a"]  # the snapshot holds everything
        waiting = asyncio.create_task(reports.take())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        waiting.cancel()
    asyncio.run(scenario())
