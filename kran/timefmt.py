"""Times as Docker writes them. Stdlib only: the runtime's shims use it too."""

from __future__ import annotations

import time


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with nanoseconds ("2026-11-24T23:38:40.543398614Z")."""
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"
