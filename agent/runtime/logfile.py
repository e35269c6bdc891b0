"""The container's log in Docker's json-file format: one JSON object per line.

{"log": "hello\\n", "stream": "stdout", "time": "2024-01-02T03:04:05.123456789Z"}

Output is cut at newlines; a line longer than MAX_LINE is written in pieces
without the newline, as Docker does. Stdlib only (runs in the shim).
"""

from __future__ import annotations

import json
import os

from kran.timefmt import now_rfc3339

MAX_LINE = 16 * 1024


class LogWriter:
    """Appends a container's stdout and stderr to its log file."""

    def __init__(self, path: str):
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        """Log what `stream` produced; an unfinished line waits for its end."""
        buf = self._partial[stream] + data
        records = []
        while True:
            cut = buf.find(b"\n")
            if cut < 0:
                break
            records.append(buf[:cut + 1])
            buf = buf[cut + 1:]
        while len(buf) >= MAX_LINE:
            records.append(buf[:MAX_LINE])
            buf = buf[MAX_LINE:]
        self._partial[stream] = buf
        self._emit(stream, records)

    def flush(self) -> None:
        """Write unfinished lines as they are (the stream ended)."""
        for stream, buf in self._partial.items():
            if buf:
                self._emit(stream, [buf])
                self._partial[stream] = b""

    def _emit(self, stream: str, records: list[bytes]) -> None:
        if not records:
            return
        stamp = now_rfc3339()
        lines = "".join(json.dumps({"log": r.decode(errors="replace"), "stream": stream, "time": stamp}) + "\n"
                        for r in records)
        os.write(self._fd, lines.encode())

    def close(self) -> None:
        self.flush()
        os.close(self._fd)
