"""gzip for pushed layers: blocks deflated in parallel, stored as they are when they would not shrink.

A layer file is cut into `BLOCK`-byte blocks, each deflated on its own in a
pool of worker threads (zlib lets go of the GIL, so every core works, as
pigz does) and primed with the 32 KiB before it, so the ratio stays close
to that of one stream. Each block ends with a sync flush, which leaves the
output byte-aligned and not final, so the pieces join into one deflate
stream; an empty last stored block ends it. A block whose samples do not
shrink (random or already-compressed data, common in layers) is written as
stored blocks: a copy, where deflating would search for matches to find
none and give the same size.

The bytes depend only on the file, the level and zlib's version: the
gzip header has no name and a zero time, the block size is fixed, and the
choice to store a block depends on its content alone. So the same layer
pushed twice gets the same digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import zlib
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BLOCK = 1 << 20
AHEAD = 12                 # blocks being deflated ahead of the reader, per stream
WINDOW = 32 << 10          # deflate's window: the dictionary each block starts from
SAMPLE = 8 << 10           # three samples of this size decide whether a block is deflated
STORED_MAX = 0xFFFF        # the most bytes one stored block holds
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"   # gzip, deflate, no flags, time 0, Unix
END = b"\x01\x00\x00\xff\xff"                          # an empty stored block marked last

_pool: ThreadPoolExecutor | None = None


def pool() -> ThreadPoolExecutor:
    """The threads that deflate blocks for every push of this process, one per core."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="gzip")
    return _pool


def stored(data: bytes | memoryview) -> bytes:
    """`data` as non-final stored deflate blocks (starting byte-aligned)."""
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    for start in range(0, len(view), STORED_MAX):
        piece = view[start:start + STORED_MAX]
        parts += [struct.pack("<BHH", 0, len(piece), len(piece) ^ 0xFFFF), piece]
    return b"".join(parts)


def worth_deflating(data: bytes | memoryview) -> bool:
    """Whether samples from the start, middle and end of `data` shrink by more than 1/16 at level 1."""
    view = memoryview(data)
    if len(view) <= 3 * SAMPLE:
        sample = bytes(view)
    else:
        middle = len(view) // 2
        sample = b"".join((view[:SAMPLE], view[middle:middle + SAMPLE], view[-SAMPLE:]))
    return len(zlib.compress(sample, 1)) < len(sample) * 15 // 16


def deflate_block(data: bytes | memoryview, window: bytes | memoryview, level: int) -> bytes:
    """One block of the stream: deflated with `window` (the input just before it) as dictionary, or stored.

    The result starts and ends byte-aligned and holds no final block.
    """
    if level == 0 or not worth_deflating(data):
        return stored(data)
    if window:
        deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=window)
    else:
        deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH)


def _read(path: Path, offset: int, length: int) -> bytes:
    """`length` bytes of the file at `offset`; OSError if the file is shorter."""
    with open(path, "rb", buffering=0) as source:
        data = os.pread(source.fileno(), length, offset)
    if len(data) != length:
        raise OSError(f"{path}: {length} bytes expected at offset {offset}, {len(data)} read")
    return data


def _deflate_range(path: Path, offset: int, length: int, level: int) -> bytes:
    """The deflated block `offset`..`offset+length` of the file, primed with the window before it."""
    start = max(0, offset - WINDOW)
    data = memoryview(_read(path, start, offset + length - start))
    return deflate_block(data[offset - start:], data[:offset - start], level)


class BlockGzip:
    """The gzip stream of one file, produced in pieces, with its digest.

    Each job reads its own block (and window) by path, so a job still
    running when the reader gives up holds no descriptor of the reader's.
    """

    def __init__(self, path: Path, level: int) -> None:
        self.path = path
        self.level = level
        self.read = 0                      # uncompressed bytes given out so far
        self._hash = hashlib.sha256()
        self._crc = 0

    def _account(self, chunk: bytes, end: int) -> None:
        """Hash the compressed `chunk`; checksum the input it covers (read again: the page cache has it)."""
        self._hash.update(chunk)
        position = self.read
        while position < end:
            length = min(BLOCK * 8, end - position)
            self._crc = zlib.crc32(_read(self.path, position, length), self._crc)
            position += length

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The compressed stream in pieces of at least `size` bytes (the last may be shorter)."""
        loop = asyncio.get_running_loop()
        total = self.path.stat().st_size
        offsets = iter(range(0, total, BLOCK))
        pending: deque[tuple[int, asyncio.Future[bytes]]] = deque()

        def refill() -> None:
            while len(pending) < AHEAD and (offset := next(offsets, None)) is not None:
                length = min(BLOCK, total - offset)
                pending.append((offset + length, loop.run_in_executor(
                    pool(), _deflate_range, self.path, offset, length, self.level)))

        out = bytearray(HEADER)
        refill()
        try:
            while pending:
                end, job = pending.popleft()
                out += await job
                refill()
                if len(out) >= size:
                    chunk = bytes(out)
                    out.clear()
                    await asyncio.to_thread(self._account, chunk, end)
                    self.read = end
                    yield chunk
        finally:
            for _, job in pending:  # the reader gave up: blocks not started yet are not deflated
                job.cancel()
        tail = bytes(out) + END
        await asyncio.to_thread(self._account, tail, total)
        trailer = struct.pack("<II", self._crc, total & 0xFFFFFFFF)
        self._hash.update(trailer)
        self.read = total
        yield tail + trailer

    def digest(self) -> str:
        """The compressed blob's digest, once every piece was taken."""
        return "sha256:" + self._hash.hexdigest()
