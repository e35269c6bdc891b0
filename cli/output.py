"""How the docker CLI prints: tables, sizes, durations, ids.

These follow docker/cli's formatter (Go's text/tabwriter with minimum width
10 and padding 3) and docker/go-units (HumanDuration,
HumanSizeWithPrecision), so kran's output lines up with docker's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from kran.units import bytes_size, human_duration, human_size

__all__ = ["bytes_size", "created_since", "ellipsis", "human_duration", "human_size",
           "json_dump", "rfc3339", "short_id", "table"]

TABLE_MIN_WIDTH = 10
TABLE_PADDING = 3


def created_since(unix_seconds: int, now: float | None = None) -> str:
    """Docker's CREATED column: "2 hours ago" (an unset time is 1970, as in docker)."""
    now = time.time() if now is None else now
    return human_duration(max(0.0, now - unix_seconds)) + " ago"


def rfc3339(unix_seconds: int, tz: tzinfo | None = None) -> str:
    """A unix time as Go's time.RFC3339 in local time (or tz): Z for UTC."""
    moment = datetime.fromtimestamp(unix_seconds, tz=timezone.utc).astimezone(tz)
    offset = moment.utcoffset() or timedelta(0)
    if not offset:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat(timespec="seconds")


def short_id(image_id: str) -> str:
    """Docker's TruncateID: the algorithm prefix dropped, 12 characters kept."""
    _, sep, rest = image_id.partition(":")
    return (rest if sep else image_id)[:12]


def ellipsis(text: str, width: int) -> str:
    """Cut text to width characters, the last one being "…", as docker does."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return text[0]
    return text[:width - 1] + "…"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Cells aligned like docker's tabwriter output; the last column is not padded."""
    lines = [list(header)] + [list(row) for row in rows]
    columns = max(len(line) for line in lines)
    widths = []
    for col in range(columns - 1):
        cells = [len(line[col]) for line in lines if col < len(line) - 1]
        widths.append(max([TABLE_MIN_WIDTH] + [w + TABLE_PADDING for w in cells]))
    out = []
    for line in lines:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(line[:-1])]
        out.append("".join(padded) + line[-1])
    return "\n".join(out) + "\n"


def json_dump(value: Any) -> str:
    """JSON the way docker inspect prints it: 4-space indent, no HTML escaping."""
    return json.dumps(value, indent=4, ensure_ascii=False)
