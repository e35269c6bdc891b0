"""Memory of processes as PSS (proportional set size), read from /proc/<pid>/smaps_rollup.

PSS charges each shared page to the processes sharing it in equal parts, so
the PSS of N shims forked from one parent adds up to what they really cost
together: their private pages plus their share of what they inherited.
"""

from __future__ import annotations

import json
from pathlib import Path

from agent.runtime.state import STATE_FILE, process_start_time


def pss(pid: int) -> int:
    """The PSS of pid in bytes; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def total_pss(pids: list[int]) -> int:
    """The PSS of several processes together, in bytes."""
    return sum(pss(pid) for pid in pids)


def parent(pid: int) -> int:
    """pid's parent pid (0 if pid is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("PPid:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def children(pid: int) -> list[int]:
    """pid's child processes (every thread's children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """pid and every process below it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children(current)
    return found


def live_shims(state_root: Path) -> dict[Path, tuple[int, int]]:
    """Tasks whose shim is still alive, among the runtime bundles under state_root.

    {bundle dir: (shim pid, container init pid or 0)}. A bundle's state.json
    names its shim's pid and start time, so a pid reused by another process
    is not mistaken for the shim; the init counts only while the shim is its parent.
    """
    alive = {}
    for state_file in state_root.rglob(STATE_FILE):
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        shim, started, init = state.get("shim_pid") or 0, state.get("shim_start_time") or 0, state.get("pid") or 0
        if shim and process_start_time(shim) == started:
            alive[state_file.parent] = (shim, init if init and parent(init) == shim else 0)
    return alive
