"""What the agent reports about its host."""

from __future__ import annotations

from pathlib import Path

from agent.registration import cpu_count, describe_host, memory_bytes


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
