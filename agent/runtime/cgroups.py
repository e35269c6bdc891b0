"""Container cgroups on cgroup v1 (one directory per controller) and v2 (one directory).

The values written come from the OCI config's linux.resources, through pure
functions (v1_values, v2_values) that unit tests check without a kernel.
Stdlib only (runs in the shim).
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer", "devices")
V2_CONTROLLERS = ("memory", "cpu", "pids")
# Docker's default device rules: everything denied, then the usual character devices.
V1_DEVICE_RULES = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
                   "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm")


def v1_values(resources: dict) -> list[tuple[str, str, str]]:
    """(controller, file, value) to write, in order, for OCI `resources` on v1."""
    values: list[tuple[str, str, str]] = []
    memory = resources.get("memory") or {}
    if memory.get("limit"):
        values.append(("memory", "memory.limit_in_bytes", str(memory["limit"])))
        if memory.get("swap"):
            values.append(("memory", "memory.memsw.limit_in_bytes", str(memory["swap"])))
    cpu = resources.get("cpu") or {}
    if cpu.get("quota"):
        values.append(("cpu", "cpu.cfs_period_us", str(cpu.get("period") or 100000)))
        values.append(("cpu", "cpu.cfs_quota_us", str(cpu["quota"])))
    pids = resources.get("pids") or {}
    if pids.get("limit"):
        values.append(("pids", "pids.max", str(pids["limit"])))
    values.append(("devices", "devices.deny", "a"))
    values.extend(("devices", "devices.allow", rule) for rule in V1_DEVICE_RULES)
    return values


def v2_values(resources: dict) -> dict[str, str]:
    """File name -> value to write for OCI `resources` on v2."""
    values: dict[str, str] = {}
    memory = resources.get("memory") or {}
    if memory.get("limit"):
        values["memory.max"] = str(memory["limit"])
        if memory.get("swap"):
            # OCI's swap is memory+swap; v2 limits swap alone.
            values["memory.swap.max"] = str(max(memory["swap"] - memory["limit"], 0))
    cpu = resources.get("cpu") or {}
    if cpu.get("quota"):
        values["cpu.max"] = f"{cpu['quota']} {cpu.get('period') or 100000}"
    pids = resources.get("pids") or {}
    if pids.get("limit"):
        values["pids.max"] = str(pids["limit"])
    return values


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read_procs(path: Path) -> list[int]:
    try:
        with open(path / "cgroup.procs") as f:
            return [int(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def _read_counter(path: Path, name: str) -> int:
    """The value of `name` in a "key value" per line cgroup file; 0 when absent."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == name:
                    return int(value)
    except FileNotFoundError:
        pass
    return 0


def _rmdir_when_empty(path: Path, deadline: float) -> None:
    """rmdir a cgroup, SIGKILLing what is left in it until it is empty."""
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if err.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
        for pid in _read_procs(path):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


class CgroupV1:
    """One directory per controller: <root>/<controller>/<parent>/<id>."""

    version = 1

    def __init__(self, parent: str, name: str, root: Path = CGROUP_ROOT):
        self.paths = {c: root / c / parent / name for c in V1_CONTROLLERS}

    def create(self, resources: dict) -> None:
        """Make the directories and write the limits."""
        for path in self.paths.values():
            path.mkdir(parents=True, exist_ok=True)
        for controller, name, value in v1_values(resources):
            target = self.paths[controller] / name
            # memsw exists only with swap accounting; the memory limit still holds without it.
            if name == "memory.memsw.limit_in_bytes" and not target.exists():
                continue
            _write(target, value)

    def add(self, pid: int) -> None:
        """Move pid (a host pid) into every controller's group."""
        for path in self.paths.values():
            _write(path / "cgroup.procs", str(pid))

    def procs(self) -> list[int]:
        return _read_procs(self.paths["pids"])

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer killed in this group."""
        return _read_counter(self.paths["memory"] / "memory.oom_control", "oom_kill")

    def exists(self) -> bool:
        return any(path.exists() for path in self.paths.values())

    def remove(self, timeout: float = 5.0) -> None:
        """Kill anything left and remove every directory."""
        deadline = time.monotonic() + timeout
        # The pids group first: once it is empty, so are the others.
        for controller in sorted(self.paths, key=lambda c: c != "pids"):
            _rmdir_when_empty(self.paths[controller], deadline)


class CgroupV2:
    """One directory in the unified hierarchy: <root>/<parent>/<id>."""

    version = 2

    def __init__(self, parent: str, name: str, root: Path = CGROUP_ROOT):
        self.root = root
        self.parent = root / parent
        self.path = self.parent / name

    def create(self, resources: dict) -> None:
        """Enable the controllers down to the parent, make the group, write the limits."""
        self.parent.mkdir(parents=True, exist_ok=True)
        enable = " ".join(f"+{c}" for c in V2_CONTROLLERS)
        for level in (self.root, self.parent):
            _write(level / "cgroup.subtree_control", enable)
        self.path.mkdir(exist_ok=True)
        for name, value in v2_values(resources).items():
            _write(self.path / name, value)

    def add(self, pid: int) -> None:
        _write(self.path / "cgroup.procs", str(pid))

    def procs(self) -> list[int]:
        return _read_procs(self.path)

    def oom_kills(self) -> int:
        return _read_counter(self.path / "memory.events", "oom_kill")

    def exists(self) -> bool:
        return self.path.exists()

    def remove(self, timeout: float = 5.0) -> None:
        try:
            _write(self.path / "cgroup.kill", "1")
        except FileNotFoundError:
            pass  # already gone, or a kernel before 5.14: _rmdir_when_empty kills one by one
        _rmdir_when_empty(self.path, time.monotonic() + timeout)


def is_v2(root: Path = CGROUP_ROOT) -> bool:
    """Whether root is a pure cgroup v2 mount (hybrid hosts keep v1 controllers)."""
    return (root / "cgroup.controllers").exists()


def open_cgroup(parent: str, name: str, root: Path = CGROUP_ROOT) -> CgroupV1 | CgroupV2:
    """The container's cgroup, for whichever hierarchy this host mounts."""
    return CgroupV2(parent, name, root) if is_v2(root) else CgroupV1(parent, name, root)
