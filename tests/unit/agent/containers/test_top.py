"""docker top from a real cgroup and /proc, and ps's formats."""

from __future__ import annotations

import os
import time
from pathlib import Path

from agent.containers.cgroup import container_cgroup
from agent.containers.top import TITLES, cpu_time, host_users, start_time, top, tty_name



def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_top_lists_the_processes_of_the_group(cgrouped_factory) -> None:  # noqa: F811
    cgrouped = cgrouped_factory(["/bin/busybox", "sh", "-c", "/bin/busybox sleep 1000 & exec /bin/busybox sleep 999"])
    view = container_cgroup(cgrouped.parent, cgrouped.name)
    _wait_for(lambda: len(view.procs()) == 2 and all(
        b"sleep" in Path(f"/proc/{p}/cmdline").read_bytes() for p in view.procs()))
    titles, rows = top(view.procs())
    assert titles == list(TITLES) == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    by_pid = {int(row[1]): row for row in rows}
    init = by_pid[cgrouped.process.pid]
    assert init[0] == "root" and init[2] == str(os.getpid())
    assert init[7] == "/bin/busybox sleep 999"
    child = next(row for pid, row in by_pid.items() if pid != cgrouped.process.pid)
    assert child[2] == str(cgrouped.process.pid) and child[7] == "/bin/busybox sleep 1000"
    for row in rows:
        assert len(row) == 8 and row[5] == "?" and row[6] == "00:00:00" and 0 <= int(row[3]) <= 99
        assert row[4] == time.strftime("%H:%M", time.localtime()) or ":" in row[4]


def test_a_group_that_does_not_exist_has_no_processes() -> None:
    view = container_cgroup("kran-test-none", "c")
    assert not view.exists() and view.procs() == []
    assert top([]) == (list(TITLES), [])


def test_gone_processes_are_skipped() -> None:
    assert top([2 ** 22 + 1])[1] == []


def test_host_users(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0::/root:/bin/sh\nsystemd-network:x:100:102::/:/bin/false\n"
                      "again:x:0:0::/:/bin/sh\nbroken\n")
    assert host_users(str(passwd)) == {0: "root", 100: "systemd-network"}
    assert host_users(str(tmp_path / "absent")) == {}


def test_ps_formats() -> None:
    assert [tty_name(n) for n in (0, (136 << 8) | 3, (137 << 8) | 1, (4 << 8) | 1, (4 << 8) | 65, 1 << 8)] == \
        ["?", "pts/3", "pts/257", "tty1", "ttyS1", "?"]
    assert [cpu_time(s) for s in (0, 61, 3 * 3600 + 2, 2 * 86400 + 5)] == \
        ["00:00:00", "00:01:01", "03:00:02", "2-00:00:05"]
    now = time.mktime((2024, 6, 15, 12, 0, 0, 0, 0, -1))
    assert start_time(now - 60, now) == "11:59"
    assert start_time(now - 10 * 86400, now) == "Jun05"
    assert start_time(now - 400 * 86400, now) == "2023"
