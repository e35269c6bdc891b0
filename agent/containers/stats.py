"""One sample of a container's resource use, as docker stats computes it.

CPU and memory come from the container's cgroup (v1 or v2), the host's CPU
time from /proc/stat (docker's CLI divides the two deltas for CPU %),
network bytes from /proc/<init pid>/net/dev (the container's network
namespace, loopback left out), block I/O from blkio (v1) or io.stat (v2)
when the group has them. Memory usage leaves out the inactive page cache,
as docker's CLI does; an unlimited memory limit is shown as the host's memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from agent.containers.cgroup import CgroupView

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    """What the ContainerStats message carries besides id, name and time; zeros for a stopped container."""

    cpu_usage_ns: int = 0
    system_cpu_ns: int = 0
    online_cpus: int = 0
    memory_usage: int = 0
    memory_limit: int = 0
    pids: int = 0
    pids_limit: int = 0
    net_rx_bytes: int = 0
    net_tx_bytes: int = 0
    block_read_bytes: int = 0
    block_write_bytes: int = 0


def _int(text: str | None) -> int:
    """A control file's number; 0 for absent, empty or "max"."""
    try:
        return int((text or "").split()[0])
    except (ValueError, IndexError):
        return 0


def _keyed(text: str | None) -> dict[str, int]:
    """memory.stat / cpu.stat: "key value" lines."""
    values = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


def system_cpu_ns(proc_stat: str = "/proc/stat") -> int:
    """The host's CPU time since boot (user to softirq, all CPUs), in nanoseconds."""
    with open(proc_stat) as f:
        for line in f:
            if line.startswith("cpu "):
                ticks = sum(int(v) for v in line.split()[1:8])
                return ticks * 1_000_000_000 // _CLOCK_TICKS
    return 0


def host_memory(meminfo: str = "/proc/meminfo") -> int:
    """The host's RAM in bytes."""
    with open(meminfo) as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def net_bytes(pid: int) -> tuple[int, int]:
    """(received, sent) bytes over every interface but loopback in the network namespace of `pid`."""
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.readlines()[2:]  # two header lines
    except (FileNotFoundError, ProcessLookupError):
        return 0, 0
    for line in lines:
        name, _, counters = line.partition(":")
        fields = counters.split()
        if name.strip() != "lo" and len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx


def _block_io(view: CgroupView) -> tuple[int, int]:
    read = write = 0
    if view.version == 2:
        for line in (view.read("", "io.stat") or "").splitlines():
            for item in line.split()[1:]:
                key, _, value = item.partition("=")
                if key == "rbytes":
                    read += int(value)
                elif key == "wbytes":
                    write += int(value)
        return read, write
    for line in (view.read("blkio", "blkio.throttle.io_service_bytes_recursive") or "").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] == "Read":
            read += int(fields[2])
        elif len(fields) == 3 and fields[1] == "Write":
            write += int(fields[2])
    return read, write


def sample(view: CgroupView, pid: int | None) -> Sample:
    """The container's figures now; zeros when it has no running task (`pid` None or no group)."""
    if pid is None or not view.exists():
        return Sample()
    host = host_memory()
    if view.version == 2:
        cpu = _keyed(view.read("", "cpu.stat")).get("usage_usec", 0) * 1000
        usage = _int(view.read("", "memory.current"))
        inactive = _keyed(view.read("", "memory.stat")).get("inactive_file", 0)
        limit = _int(view.read("", "memory.max"))
    else:
        cpu = _int(view.read("cpuacct", "cpuacct.usage"))
        usage = _int(view.read("memory", "memory.usage_in_bytes"))
        inactive = _keyed(view.read("memory", "memory.stat")).get("total_inactive_file", 0)
        limit = _int(view.read("memory", "memory.limit_in_bytes"))
    rx, tx = net_bytes(pid)
    block_read, block_write = _block_io(view)
    return Sample(
        cpu_usage_ns=cpu, system_cpu_ns=system_cpu_ns(), online_cpus=os.sysconf("SC_NPROCESSORS_ONLN"),
        memory_usage=usage - inactive if inactive < usage else usage,
        memory_limit=min(limit, host) if limit else host,
        pids=_int(view.read("pids", "pids.current")), pids_limit=_int(view.read("pids", "pids.max")),
        net_rx_bytes=rx, net_tx_bytes=tx, block_read_bytes=block_read, block_write_bytes=block_write)
