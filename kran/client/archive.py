"""Tar streams of `docker cp`: the stat of what a tar holds, and uploads in chunks."""

from __future__ import annotations

import io
import stat as statmode
import tarfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from kran.client.api import CHUNK_SIZE

# Go's os.FileMode type bits, which Docker's path stat (X-Docker-Container-Path-Stat) uses.
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20


class ChunkReader(io.RawIOBase):
    """A binary file over an iterator of chunks; `total` counts the bytes handed out."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._pending = b""
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._handed_out(self._pending[:size])
        self._pending = self._pending[size:]
        self.total += size
        return size

    def _handed_out(self, data: bytes) -> None:
        """Called with every piece read (subclasses keep it)."""


class _Recording(ChunkReader):
    """A ChunkReader that remembers every byte it handed out."""

    def __init__(self, chunks: Iterator[bytes]):
        super().__init__(chunks)
        self.seen: list[bytes] = []

    def _handed_out(self, data: bytes) -> None:
        self.seen.append(data)

    def rest(self) -> _Replay:
        """What was read so far, then what was not."""
        return _Replay([b"".join(self.seen), self._pending], self._chunks)


class _Replay:
    """Chunks already read, then the rest of the source; close() ends the source."""

    def __init__(self, read: list[bytes], source: Iterator[bytes]):
        self._read = [part for part in read if part]
        self._source = source

    def __iter__(self) -> _Replay:
        return self

    def __next__(self) -> bytes:
        if self._read:
            return self._read.pop(0)
        return next(self._source)

    def close(self) -> None:
        """Stop the source (a gRPC stream is cancelled)."""
        self._read = []
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


def go_file_mode(info: tarfile.TarInfo) -> int:
    """A tar member's mode as Go's os.FileMode (permission bits and type bits)."""
    mode = info.mode & 0o777
    if info.mode & statmode.S_ISUID:
        mode |= GO_MODE_SETUID
    if info.mode & statmode.S_ISGID:
        mode |= GO_MODE_SETGID
    if info.mode & statmode.S_ISVTX:
        mode |= GO_MODE_STICKY
    if info.isdir():
        mode |= GO_MODE_DIR
    elif info.issym():
        mode |= GO_MODE_SYMLINK
    elif info.isfifo():
        mode |= GO_MODE_NAMED_PIPE
    elif info.ischr():
        mode |= GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE
    elif info.isblk():
        mode |= GO_MODE_DEVICE
    return mode


def is_dir(stat: dict[str, Any]) -> bool:
    """Whether a Docker path stat describes a directory."""
    return bool(stat.get("mode", 0) & GO_MODE_DIR)


def archive_stat(chunks: Iterator[bytes]) -> tuple[Iterator[bytes], dict[str, Any]]:
    """Read a tar stream's first header: (the whole stream again, Docker's stat of it).

    The stat is {"name", "size", "mode" (Go FileMode), "mtime", "linkTarget"};
    an empty tar gives {}. Errors of the stream are raised here, not later.
    """
    source = _Recording(iter(chunks))
    with tarfile.open(fileobj=io.BufferedReader(source), mode="r|") as tar:
        try:
            first = tar.next()
        except tarfile.ReadError:
            first = None
    stat: dict[str, Any] = {}
    if first is not None:
        stat = {
            "name": first.name.rstrip("/").rsplit("/", 1)[-1],
            "size": first.size,
            "mode": go_file_mode(first),
            "mtime": datetime.fromtimestamp(first.mtime, tz=timezone.utc)
                             .strftime("%Y-%m-%dT%H:%M:%SZ"),
            "linkTarget": first.linkname if first.issym() else "",
        }
    return source.rest(), stat


def chunked_tar(header: Any, data: bytes | Iterable[bytes] | Any,
                wrap: Callable[[bytes], Any]) -> Iterator[Any]:
    """The requests of an upload: header, then data (bytes, chunks or a file) in chunks."""
    yield header
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, len(view), CHUNK_SIZE):
            yield wrap(bytes(view[start:start + CHUNK_SIZE]))
        return
    if hasattr(data, "read"):
        while True:
            block = data.read(CHUNK_SIZE)
            if not block:
                return
            yield wrap(block)
    for block in data:
        for start in range(0, len(block), CHUNK_SIZE):
            yield wrap(bytes(block[start:start + CHUNK_SIZE]))
