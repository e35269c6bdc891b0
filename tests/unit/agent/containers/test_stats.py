"""docker stats' figures from a real process in a real cgroup; freezing; the Prometheus collector."""

from __future__ import annotations

import os
import sys
import time
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest

from agent import linux
from agent.containers.cgroup import CgroupView, container_cgroup, frozen
from agent.containers.metrics import ContainerCollector
from agent.containers.stats import Sample, host_memory, net_bytes, sample, system_cpu_ns


MIB = 1 << 20
HOG = ("import time\nx = bytearray(40 << 20)\nfor i in range(0, len(x), 4096): x[i] = 1\n"
       "while time.process_time() < 0.3: pass\nprint('ready', flush=True)\ntime.sleep(1000)\n")
SPIN = "print('ready', flush=True)\nwhile True: pass\n"


def _ready(cgrouped) -> None:
    assert cgrouped.process.stdout.readline() == "ready\n"


def test_a_sample_of_a_limited_group(cgrouped_factory) -> None:  # noqa: F811
    cgrouped = cgrouped_factory([sys.executable, "-c", HOG], {"memory": {"limit": 256 * MIB}, "pids": {"limit": 50}},
                                stdout=-1, text=True)
    _ready(cgrouped)
    view = container_cgroup(cgrouped.parent, cgrouped.name)
    figures = sample(view, cgrouped.process.pid)
    assert figures.cpu_usage_ns >= 0.25e9  # the cgroup counts precisely, process_time by ticks
    assert 40 * MIB <= figures.memory_usage < 200 * MIB
    assert figures.memory_limit == 256 * MIB
    assert (figures.pids, figures.pids_limit) == (1, 50)
    assert figures.online_cpus == os.sysconf("SC_NPROCESSORS_ONLN")
    assert figures.system_cpu_ns > figures.cpu_usage_ns
    assert figures.block_read_bytes >= 0 and figures.block_write_bytes >= 0


def test_an_unlimited_group_shows_the_host_memory(cgrouped_factory) -> None:  # noqa: F811
    cgrouped = cgrouped_factory(["/bin/busybox", "sleep", "1000"])
    view = container_cgroup(cgrouped.parent, cgrouped.name)
    deadline = time.monotonic() + 5
    while view.procs() != [cgrouped.process.pid] or b"busybox" not in open(
            f"/proc/{cgrouped.process.pid}/cmdline", "rb").read():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    figures = sample(view, cgrouped.process.pid)
    assert figures.memory_limit == host_memory() > 0
    assert (figures.pids, figures.pids_limit) == (1, 0)


def test_not_running_is_zeros(cgrouped_factory) -> None:  # noqa: F811
    cgrouped = cgrouped_factory(["/bin/busybox", "sleep", "1000"])
    assert sample(container_cgroup(cgrouped.parent, cgrouped.name), None) == Sample()
    assert sample(container_cgroup("kran-test-none", "c"), os.getpid()) == Sample()


def test_network_bytes_leave_out_loopback() -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # a fresh network namespace has only lo
        try:
            linux.unshare(linux.CLONE_NEWNET)
            os.write(write_fd, b"x")
            time.sleep(10)
        finally:
            os._exit(0)
    try:
        os.read(read_fd, 1)
        assert net_bytes(pid) == (0, 0)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(read_fd)
        os.close(write_fd)
    assert net_bytes(2 ** 22 + 1) == (0, 0)
    assert system_cpu_ns() > 0


def test_freezing_stops_the_clock(cgrouped_factory) -> None:  # noqa: F811
    cgrouped = cgrouped_factory([sys.executable, "-c", SPIN], stdout=-1, text=True)
    _ready(cgrouped)
    view = container_cgroup(cgrouped.parent, cgrouped.name)
    with frozen(view):
        before = sample(view, cgrouped.process.pid).cpu_usage_ns
        time.sleep(0.3)
        assert sample(view, cgrouped.process.pid).cpu_usage_ns == before
    deadline = time.monotonic() + 5
    while sample(view, cgrouped.process.pid).cpu_usage_ns < before + 0.05e9:  # thawed: it spins again
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_prometheus_collector(cgrouped_factory) -> None:  # noqa: F811
    cgrouped = cgrouped_factory([sys.executable, "-c", HOG], stdout=-1, text=True)
    _ready(cgrouped)
    # The manager's interface over the real group, which the runtime names <cgroup parent>/<container id>.
    running = SimpleNamespace(id=cgrouped.name, name="web")
    stopped = SimpleNamespace(id="f" * 64, name="old")
    pids = {running.id: cgrouped.process.pid, stopped.id: None}
    manager = SimpleNamespace(list=lambda: [running, stopped], pid=pids.get,
                              runtime=SimpleNamespace(cgroup_parent=cgrouped.parent))
    registry = CollectorRegistry()
    registry.register(ContainerCollector(manager))
    text = generate_latest(registry).decode()
    assert "old" not in text
    labels = f'{{id="{running.id[:12]}",name="web"}}'
    lines = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line.startswith("kran_")}
    assert lines[f"kran_container_cpu_seconds_total{labels}"] >= 0.25
    assert lines[f"kran_container_memory_bytes{labels}"] >= 40 * MIB
    assert lines[f"kran_container_pids{labels}"] == 1


def test_the_files_of_cgroup_v2_and_of_blkio(tmp_path) -> None:
    """This host is cgroup v1: v2's files (and v1's blkio, which the runtime does not join), as the kernel writes them."""
    v2 = tmp_path / "v2"
    v2.mkdir()
    files = {"cgroup.procs": f"{os.getpid()}\n", "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
             "memory.current": "10485760\n", "memory.stat": "anon 4096\nfile 8192\ninactive_file 1048576\n",
             "memory.max": "max\n", "pids.current": "3\n", "pids.max": "max\n",
             "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n8:16 rbytes=1 wbytes=2 rios=1 wios=1\n"}
    for name, text in files.items():
        (v2 / name).write_text(text)
    figures = sample(CgroupView(2, {"": v2}), os.getpid())
    assert (figures.cpu_usage_ns, figures.memory_usage, figures.memory_limit) == (1_500_000, 9 * MIB, host_memory())
    assert (figures.pids, figures.pids_limit, figures.block_read_bytes, figures.block_write_bytes) == \
        (3, 0, 4097, 8194)
    v1 = {c: tmp_path / c for c in ("pids", "cpuacct", "memory", "blkio")}
    for path in v1.values():
        path.mkdir()
    (v1["pids"] / "cgroup.procs").write_text(f"{os.getpid()}\n")
    (v1["blkio"] / "blkio.throttle.io_service_bytes_recursive").write_text(
        "8:0 Read 100\n8:0 Write 200\n8:0 Sync 300\n8:0 Async 0\n8:0 Total 300\nTotal 300\n")
    (v1["memory"] / "memory.usage_in_bytes").write_text("1000\n")
    (v1["memory"] / "memory.stat").write_text("cache 0\ntotal_inactive_file 2000\n")
    figures = sample(CgroupView(1, v1), os.getpid())
    assert (figures.block_read_bytes, figures.block_write_bytes, figures.memory_usage) == (100, 200, 1000)
