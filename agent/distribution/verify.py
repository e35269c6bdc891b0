"""Checking what a registry sends while it arrives: digest and size, DiffID, decompression bombs.

A blob is hashed and counted as it streams in (`BlobCheck`): more bytes
than its descriptor's size stop the download at once, and the digest is
compared at the end. A layer is decompressed on the way (`LayerWriter`:
gzip, zstd, or plain as the magic bytes say), its uncompressed bytes hashed
into the DiffID and written to a file in the store's ingest area.

Decompression bombs: a layer may not decompress to more than
max(`BOMB_RATIO` x its compressed size, `BOMB_FLOOR`) bytes, i.e. 64 times
its size once that is past 1 GiB. Real layers compress 2-10 times; a
small layer of zeros may still expand to 1 GiB. Output is produced in
bounded pieces, so a bomb is refused before it takes memory or disk.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from agent.images.content import check_digest
from kran import errors

BOMB_RATIO = 64
BOMB_FLOOR = 1 << 30
_PIECE = 1 << 20  # at most this much decompressed output per step


@dataclass(frozen=True)
class BombLimit:
    """How far a layer may expand: `ratio` times its compressed size, and at least `floor` bytes."""

    ratio: int = BOMB_RATIO
    floor: int = BOMB_FLOOR

    def cap(self, compressed_size: int) -> int:
        """The most uncompressed bytes allowed for a layer of `compressed_size` bytes."""
        return max(self.ratio * compressed_size, self.floor)


class BlobCheck:
    """Hashes and counts a blob as it arrives; refuses more than `size` bytes or a wrong digest."""

    def __init__(self, digest: str, size: int, what: str = "blob") -> None:
        check_digest(digest, what)
        self.digest, self.size, self.what = digest, size, what
        self.received = 0
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        """Account for the next piece; errors.InvalidArgument once past the declared size."""
        self.count(len(chunk))
        self.hash(chunk)

    def count(self, length: int) -> None:
        """Count `length` more bytes as they arrive; errors.InvalidArgument once past the declared size.

        The bytes themselves go to hash() afterwards, in order (a worker thread may do that).
        """
        self.received += length
        if self.size >= 0 and self.received > self.size:
            raise errors.InvalidArgument(
                f"{self.what} {self.digest}: the registry sent more than its declared size of {self.size} bytes")

    def hash(self, data: bytes) -> None:
        """Hash the next counted bytes."""
        self._hash.update(data)

    def finish(self) -> None:
        """errors.InvalidArgument unless the blob is complete and hashes to its digest."""
        if self.size >= 0 and self.received != self.size:
            raise errors.InvalidArgument(
                f"{self.what} {self.digest}: got {self.received} bytes, its descriptor says {self.size}")
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self.digest:
            raise errors.InvalidArgument(
                f"{self.what} {self.digest}: digest mismatch: the content hashes to {actual}")


def check_bytes(data: bytes, digest: str, size: int, what: str) -> None:
    """BlobCheck for a blob held in memory (manifest, config)."""
    check = BlobCheck(digest, size, what)
    check.update(data)
    check.finish()


class _Sink:
    """Where decompressed bytes go: hashed into the DiffID, counted against the cap, written out."""

    def __init__(self, out: BinaryIO, cap: int, what: str) -> None:
        self.out, self.cap, self.what = out, cap, what
        self.size = 0
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.cap:
            raise errors.InvalidArgument(
                f"{self.what}: refused as a decompression bomb: it expands past {self.cap} bytes")
        self.hash.update(data)
        self.out.write(data)
        return len(data)


class _Gzip:
    """Streaming gzip with several members, output in bounded pieces."""

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)

    def _inflate_all(self, data: bytes) -> None:
        out = self._inflate.decompress(data, _PIECE)
        self.sink.write(out)
        # A full piece may leave output inside zlib even when all input was taken.
        while not self._inflate.eof and (self._inflate.unconsumed_tail or len(out) == _PIECE):
            out = self._inflate.decompress(self._inflate.unconsumed_tail, _PIECE)
            self.sink.write(out)

    def write(self, data: bytes) -> None:
        while data:
            if self._inflate.eof:
                if not data.strip(b"\0"):
                    return  # zero padding after the last member, as some tools write
                self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
            self._inflate_all(data)
            data = self._inflate.unused_data if self._inflate.eof else b""

    def close(self) -> None:
        if not self._inflate.eof:
            raise errors.InvalidArgument(f"{self.sink.what}: the gzip stream ends early")


class _Zstd:
    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self._writer = zstandard.ZstdDecompressor().stream_writer(sink, write_size=_PIECE, closefd=False)

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    def close(self) -> None:
        self._writer.flush()


class _Plain:
    def __init__(self, sink: _Sink) -> None:
        self.sink = sink

    def write(self, data: bytes) -> None:
        self.sink.write(data)

    def close(self) -> None:
        pass


class LayerWriter:
    """Decompresses a layer as it arrives into `out`, hashing the DiffID.

    The compression is read from the first bytes (gzip, zstd, else plain
    tar), whatever the media type says, as Docker does. `compressed_size`
    sets the bomb cap.
    """

    def __init__(self, out: BinaryIO, compressed_size: int, what: str, limit: BombLimit = BombLimit()) -> None:
        self.what = what
        self._sink = _Sink(out, limit.cap(compressed_size), what)
        self._codec: _Gzip | _Zstd | _Plain | None = None
        self._head = b""

    def write(self, chunk: bytes) -> None:
        """Feed the next compressed piece."""
        if self._codec is None:
            self._head += chunk
            if len(self._head) < 4:
                return
            chunk, self._head = self._head, b""
            self._codec = _open(chunk, self._sink)
        try:
            self._codec.write(chunk)
        except (zlib.error, zstandard.ZstdError) as exc:
            raise errors.InvalidArgument(f"{self.what}: corrupt compressed data: {exc}") from None

    def finish(self) -> tuple[str, int]:
        """End of input: (DiffID, uncompressed size)."""
        if self._codec is None:
            self._codec = _open(self._head, self._sink)
            self._codec.write(self._head)
        try:
            self._codec.close()
        except zstandard.ZstdError as exc:
            raise errors.InvalidArgument(f"{self.what}: corrupt compressed data: {exc}") from None
        return "sha256:" + self._sink.hash.hexdigest(), self._sink.size


def _open(head: bytes, sink: _Sink) -> _Gzip | _Zstd | _Plain:
    if head.startswith(b"\x1f\x8b"):
        return _Gzip(sink)
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return _Zstd(sink)
    return _Plain(sink)
