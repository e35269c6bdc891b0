"""Pull and push progress, printed as the docker CLI prints it.

On a terminal each layer keeps one line, rewritten in place as its status
changes (cursor moves, as docker's jsonmessage does), with a bar and sizes
while it downloads, extracts or uploads:

    a46fbb00284b: Downloading [=====>                ]  1.235MB/3.4MB 2s

Without a terminal each status is printed once, as a plain line, and the
lines that only move a counter are left out. A line without a layer id
("Digest: ...", "Status: ...") ends the block of layer lines above it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from kran.units import human_size

# docker shows a 50-cell bar on terminals wider than 110 columns; on
# narrower ones the bar shrinks to fit, and below this many cells it is left out.
FULL_BAR = 50
_MIN_BAR = 10
# Room the rest of a progress line takes besides the bar.
_LINE_ROOM = 60
_ESC = "\x1b["


def bar(current: int, total: int, cells: int) -> str:
    """docker's bar: "[====>     ] " with cells cells, or "" when cells is 0."""
    if cells <= 0:
        return ""
    filled = min(cells, int(current * cells / total)) if total > 0 else 0
    return f"[{'=' * filled}>{' ' * (cells - filled)}] "


def counts(current: int, total: int) -> str:
    """docker's sizes: "  1.235MB/3.4MB", only the current size when the total is unknown or wrong."""
    if total <= 0 or current > total:
        return f"{human_size(current, 4):>8}"
    return f"{human_size(current, 4):>8}/{human_size(total, 4)}"


def progress_text(current: int, total: int, width: int, elapsed: float | None = None) -> str:
    """What follows the status on a terminal: bar, sizes and time left ("" with no counts)."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return counts(current, total)
    cells = FULL_BAR if width > 110 else min(FULL_BAR, width - _LINE_ROOM)
    text = bar(current, total, cells if cells >= _MIN_BAR else 0) + counts(current, total)
    if elapsed and 0 < current < total and width > 50:
        text += " " + go_duration(int(elapsed / current * (total - current)))
    return text


def go_duration(seconds: int) -> str:
    """Whole seconds as Go prints a time.Duration: "7s", "2m5s", "1h0m3s"."""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def is_layer_line(line: dict[str, Any]) -> bool:
    """Whether a progress line belongs to one layer's line (rather than a line of its own).

    "latest: Pulling from library/busybox" has an id (the tag) but is a
    heading, as in docker's stream, where it alone carries no progress.
    """
    return bool(line.get("id")) and not line.get("status", "").startswith("Pulling from ")


class ProgressPrinter:
    """Prints a stream of docker progress dicts to out, live on a terminal, plain otherwise.

    show_nodes prefixes each line with "[node] " (pulls on several nodes at once).
    """

    def __init__(self, out: TextIO, tty: bool, width: int = 80, show_nodes: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        self.out = out
        self.tty = tty
        self.width = width
        self.show_nodes = show_nodes
        self.clock = clock
        # Layer line key -> its row, counted from the first layer line of the block.
        self._rows: dict[tuple[str, str], int] = {}
        self._started: dict[tuple[str, str], float] = {}
        # Without a terminal: the last status printed for each layer.
        self._last: dict[tuple[str, str], str] = {}

    def show_all(self, lines: Iterable[dict[str, Any]]) -> str | None:
        """Print every line; stop at the first error and return its message (None if none)."""
        for line in lines:
            if "error" in line:
                return line["error"]
            self.show(line)
        return None

    def show(self, line: dict[str, Any]) -> None:
        """Print one progress line."""
        prefix = f"[{line['node']}] " if self.show_nodes and line.get("node") else ""
        if not is_layer_line(line):
            self._rows.clear()
            self._last.clear()
            heading = f"{line['id']}: " if line.get("id") else ""
            self.out.write(f"{prefix}{heading}{line.get('status', '')}\n")
            self.out.flush()
            return
        key = (line.get("node", ""), line["id"])
        detail = line.get("progressDetail") or {}
        current, total = int(detail.get("current", 0)), int(detail.get("total", 0))
        if self.tty:
            self._rewrite(key, f"{prefix}{line['id']}: {line.get('status', '')} "
                          f"{self._progress(key, current, total)}")
        elif not current and not total:
            # docker leaves out, without a terminal, the lines that carry counts.
            status = line.get("status", "")
            if self._last.get(key) != status:
                self._last[key] = status
                self.out.write(f"{prefix}{line['id']}: {status}\n")
                self.out.flush()

    def _progress(self, key: tuple[str, str], current: int, total: int) -> str:
        if current <= 0:
            self._started.pop(key, None)
            return progress_text(current, total, self.width)
        started = self._started.setdefault(key, self.clock())
        return progress_text(current, total, self.width, self.clock() - started)

    def _rewrite(self, key: tuple[str, str], text: str) -> None:
        """Put text on the key's row: a new row below the others, or its own row again."""
        if key not in self._rows:
            self._rows[key] = len(self._rows)
            self.out.write("\n")
        up = len(self._rows) - self._rows[key]
        # A line longer than the terminal would wrap and throw the rows off.
        text = text[:max(1, self.width - 1)]
        self.out.write(f"{_ESC}{up}A{_ESC}2K\r{text}\r{_ESC}{up}B")
        self.out.flush()
