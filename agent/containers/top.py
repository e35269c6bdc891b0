"""docker top: the container's processes in `ps -ef`'s columns, read from /proc.

Docker runs the host's `ps -ef` and keeps the container's pids; this reads
the same fields from /proc as procps does: host pids, user names from the
HOST's /etc/passwd, C as procps computes it (CPU time over lifetime,
capped at 99), STIME as HH:MM within a day, MonDD within a year, else the year.
"""

from __future__ import annotations

import os
import time

TITLES = ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")
_HERTZ = os.sysconf("SC_CLK_TCK")
_USER_WIDTH = 8  # procps shows longer names cut with "+"


def host_users(passwd: str = "/etc/passwd") -> dict[int, str]:
    """uid -> user name from a passwd file (the first name for a uid wins, as getpwuid)."""
    users: dict[int, str] = {}
    try:
        with open(passwd, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 3 and fields[2].isdigit():
                    users.setdefault(int(fields[2]), fields[0])
    except FileNotFoundError:
        pass
    return users


def _boot_time() -> int:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return int(line.split()[1])
    return 0


def tty_name(tty_nr: int) -> str:
    """The controlling terminal's name as ps prints it ("?" for none)."""
    if tty_nr == 0:
        return "?"
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    return "?"


def cpu_time(seconds: int) -> str:
    """ps's TIME: [DD-]HH:MM:SS."""
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def start_time(started: float, now: float) -> str:
    """ps's STIME for a process started at the unix time `started`."""
    age = now - started
    fmt = "%H:%M" if age <= 86400 else "%b%d" if age <= 365 * 86400 else "%Y"
    return time.strftime(fmt, time.localtime(started))


def _user(uid: int, users: dict[int, str]) -> str:
    name = users.get(uid, str(uid))
    return name if len(name) <= _USER_WIDTH else name[:_USER_WIDTH - 1] + "+"


def process_row(pid: int, users: dict[int, str], boot: int, now: float) -> list[str] | None:
    """One process's fields in TITLES order; None if it has gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat_line = f.read().decode(errors="replace")
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    comm, _, rest = stat_line[stat_line.index("(") + 1:].rpartition(")")
    fields = rest.split()
    ppid, tty_nr = int(fields[1]), int(fields[4])
    ticks = int(fields[11]) + int(fields[12])
    started = boot + int(fields[19]) / _HERTZ
    uid = next(int(line.split()[2]) for line in status.splitlines() if line.startswith("Uid:"))
    lifetime = int(now - started)
    pcpu = min(ticks * 100 // _HERTZ // lifetime, 99) if lifetime > 0 else 0
    command = cmdline.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace") or f"[{comm}]"
    return [_user(uid, users), str(pid), str(ppid), str(pcpu), start_time(started, now),
            tty_name(tty_nr), cpu_time(ticks // _HERTZ), command]


def top(pids: list[int], passwd: str = "/etc/passwd") -> tuple[list[str], list[list[str]]]:
    """(titles, one row per process still alive) for the host pids `pids`, by pid."""
    users = host_users(passwd)
    boot, now = _boot_time(), time.time()
    rows = [row for pid in sorted(pids) if (row := process_row(pid, users, boot, now)) is not None]
    return list(TITLES), rows
