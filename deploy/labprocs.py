"""The lab's processes: started detached with their output in a log, found and stopped by pid.

A process belongs to a lab when the lab started it (its pid is in lab.json and
its command line names the lab's directory), when it runs in one of the lab's
network namespaces, or when it sits in one of the lab's cgroups. Nothing is
ever looked up or killed by program name.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from agent.runtime.cgroups import CGROUP_ROOT, is_v2
from tests.procs import pid_alive

KILL_WAIT = 5.0


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start argv in its own session (a Ctrl-C of the caller does not reach it), output appended to log."""
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def command_line(pid: int) -> str:
    """pid's arguments joined by spaces, "" when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def pids_mentioning(text: str) -> list[int]:
    """Live processes (other than this one) whose command line contains text."""
    return [pid for pid in _pids() if pid != os.getpid() and text in command_line(pid) and pid_alive(pid)]


def pids_in_netns(path: Path) -> list[int]:
    """Live processes in the network namespace bound at path (/run/netns/NAME)."""
    try:
        target = os.stat(path)
    except FileNotFoundError:
        return []
    found = []
    for pid in _pids():
        try:
            ns = os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        if (ns.st_dev, ns.st_ino) == (target.st_dev, target.st_ino) and pid_alive(pid):
            found.append(pid)
    return found


def _signal(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until none of pids is alive or timeout passed; those still alive."""
    deadline = time.monotonic() + timeout
    alive = [pid for pid in pids if pid_alive(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if pid_alive(pid)]
    return alive


def stop_all(pids: Iterable[int], grace: float = 10.0) -> None:
    """SIGTERM every pid at once, then SIGKILL whichever is still alive after grace."""
    pids = [pid for pid in pids if pid > 0]
    _signal(pids, signal.SIGTERM)
    _signal(pids, signal.SIGCONT)  # a stopped (paused) process acts on its SIGTERM only once continued
    left = _wait_gone(pids, grace)
    _signal(left, signal.SIGKILL)
    _wait_gone(left, KILL_WAIT)


def hierarchies() -> list[Path]:
    """The mounted cgroup hierarchies: the root on a pure v2 host, else each v1 controller's (and v2's) mount."""
    if is_v2(CGROUP_ROOT):
        return [CGROUP_ROOT]
    found: dict[Path, Path] = {}
    for path in sorted(CGROUP_ROOT.iterdir()):
        if (path / "cgroup.procs").exists():
            found.setdefault(path.resolve(), path)  # cpu and cpuacct may be one mount under two names
    return list(found.values())


def cgroup_groups(pattern: re.Pattern[str]) -> list[Path]:
    """The groups right below each hierarchy's root whose name matches pattern."""
    return [group for base in hierarchies() for group in sorted(base.iterdir())
            if group.is_dir() and pattern.fullmatch(group.name)]


def _tree(path: Path) -> list[Path]:
    """path and every group below it, deepest first."""
    groups = [Path(top) / sub for top, subs, _ in os.walk(path, topdown=False) for sub in subs]
    return groups + [path]


def cgroup_pids(path: Path) -> list[int]:
    """Processes in group path or below."""
    pids = []
    for group in _tree(path):
        try:
            pids += [int(line) for line in (group / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            continue
    return pids


def kill_cgroup(path: Path) -> None:
    """SIGKILL every process in group path and below until none is left."""
    deadline = time.monotonic() + KILL_WAIT
    while (pids := cgroup_pids(path)) and time.monotonic() < deadline:
        _signal(pids, signal.SIGKILL)
        time.sleep(0.05)


def remove_cgroup(path: Path) -> None:
    """Remove group path and the groups below it (deepest first), killing what is still in them."""
    kill_cgroup(path)
    deadline = time.monotonic() + KILL_WAIT
    for group in _tree(path):
        while True:
            try:
                group.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as err:
                # EBUSY while the last processes finish exiting.
                if err.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def listening(pid: int, host: str, port: int) -> bool:
    """Whether a TCP socket listens on host:port (or every address) in pid's network namespace."""
    ip = ipaddress.IPv4Address(host)
    wanted = {"tcp": {_proc_net(ip), _proc_net(ipaddress.IPv4Address(0))},
              "tcp6": {_proc_net(ipaddress.IPv6Address(f"::ffff:{ip}")), _proc_net(ipaddress.IPv6Address(0))}}
    for table, addresses in wanted.items():
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for fields in (line.split() for line in lines):
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port and address in addresses:  # 0A: LISTEN
                return True
    return False


def _proc_net(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address as /proc/net/tcp{,6} writes it: 32-bit words, each in host (little-endian) order."""
    packed = ip.packed
    return "".join(packed[i:i + 4][::-1].hex().upper() for i in range(0, len(packed), 4))
