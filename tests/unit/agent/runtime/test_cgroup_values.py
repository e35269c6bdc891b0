"""Cgroup files and values for v1 and v2, written into a directory tree instead of the kernel."""

from __future__ import annotations

from pathlib import Path

from agent.runtime.cgroups import CgroupV1, CgroupV2, open_cgroup, v1_values, v2_values

RESOURCES = {"memory": {"limit": 64 << 20, "swap": 128 << 20}, "cpu": {"quota": 150000, "period": 100000},
             "pids": {"limit": 100}}


def test_v2_values() -> None:
    assert v2_values(RESOURCES) == {"memory.max": str(64 << 20), "memory.swap.max": str(64 << 20),
                                    "cpu.max": "150000 100000", "pids.max": "100"}
    assert v2_values({}) == {}


def test_v1_values() -> None:
    values = v1_values(RESOURCES)
    assert values[:5] == [("memory", "memory.limit_in_bytes", str(64 << 20)),
                          ("memory", "memory.memsw.limit_in_bytes", str(128 << 20)),
                          ("cpu", "cpu.cfs_period_us", "100000"), ("cpu", "cpu.cfs_quota_us", "150000"),
                          ("pids", "pids.max", "100")]
    assert values[5] == ("devices", "devices.deny", "a")
    assert ("devices", "devices.allow", "c 1:3 rwm") in values


def test_v2_group_is_written(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    group = open_cgroup("kran", "c1", tmp_path)
    assert isinstance(group, CgroupV2)
    group.create(RESOURCES)
    path = tmp_path / "kran" / "c1"
    assert (path / "memory.max").read_text() == str(64 << 20)
    assert (path / "cpu.max").read_text() == "150000 100000"
    assert (path / "pids.max").read_text() == "100"
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (tmp_path / "kran" / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    (path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert group.oom_kills() == 1
    group.add(42)
    assert group.procs() == [42]


def test_v1_is_chosen_on_a_hybrid_host(tmp_path: Path) -> None:
    group = open_cgroup("kran", "c1", tmp_path)
    assert isinstance(group, CgroupV1)
    assert group.paths["memory"] == tmp_path / "memory" / "kran" / "c1"
