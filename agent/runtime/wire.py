"""The shim's control socket: JSON lines, then framed bytes for attach.

A request is one JSON object on a line; the answer is one JSON object on a
line, {"ok": true, ...} or {"error": "...", "kind": "..."}. After an
"attach" answer the connection carries frames both ways with Docker's
stdcopy header: stream (1 byte), 3 zero bytes, big-endian length (4 bytes).
Streams: 0 stdin (an empty frame closes the container's stdin), 1 stdout,
2 stderr, 3 the exit status as JSON (the last frame), 4 a terminal size
(height, width as two big-endian 16-bit numbers). An "exec" answer is
followed by the same frames for the exec's process. Stdlib only.
"""

from __future__ import annotations

import json
import struct

STDIN, STDOUT, STDERR, EXIT, RESIZE = 0, 1, 2, 3, 4
HEADER = struct.Struct(">B3xI")
SIZE = struct.Struct(">HH")
MAX_FRAME = 1 << 20


def frame(stream: int, data: bytes) -> bytes:
    """One frame: header + payload."""
    return HEADER.pack(stream, len(data)) + data


def encode(message: dict) -> bytes:
    """A request or answer as a JSON line."""
    return json.dumps(message).encode() + b"\n"


def decode(line: bytes) -> dict:
    """Parse a JSON line; ValueError when it is not a JSON object."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("expected a JSON object")
    return message
