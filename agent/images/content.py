"""The content store: blobs addressed by their sha256, written through an ingest area.

Layout under the store's root:

    blobs/sha256/<hex>   committed blobs; a file here always hashes to its name
    ingest/              files being written (uploads, spooled archives, blobs
                         being hashed); anything left here after a crash is junk

A blob is written to ingest/, hashed while written, fsynced and renamed into
place, so a reader never sees a partial blob.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import lzma
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kran import errors

_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
_HEX_RE = re.compile(r"[a-f0-9]{64}")
_COPY_CHUNK = 1 << 20

try:  # zstd is optional: without the library, zstd input is refused with a clear message.
    import zstandard
except ImportError:  # pragma: no cover - the project depends on it
    zstandard = None


def check_digest(digest: str, what: str = "digest") -> str:
    """Return the hex part of `digest` ("sha256:<64 hex>"), or raise errors.InvalidArgument.

    Every path built from a digest goes through here first, so no name from
    an archive or a request can walk out of blobs/.
    """
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise errors.InvalidArgument(f"invalid {what} {digest!r}: expected sha256:<64 hex digits>")
    return digest[len("sha256:"):]


def sha256_digest(data: bytes) -> str:
    """The digest of `data` as "sha256:<hex>"."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compression_of(head: bytes) -> str | None:
    """The compression named by the magic bytes at the start of a stream, None for plain data."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    return None


@contextlib.contextmanager
def decompressed(raw: BinaryIO) -> Iterator[BinaryIO]:
    """Read the seekable stream `raw` decompressed (gzip, bzip2, xz, zstd) as its magic bytes say.

    Plain data is passed through. zstd needs the zstandard library; without it
    such input is refused with errors.InvalidArgument.
    """
    start = raw.tell()
    kind = compression_of(raw.read(6))
    raw.seek(start)
    if kind is None:
        yield raw
    elif kind == "gzip":
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            yield stream
    elif kind == "bzip2":
        with bz2.BZ2File(raw) as stream:
            yield stream
    elif kind == "xz":
        with lzma.LZMAFile(raw) as stream:
            yield stream
    else:
        if zstandard is None:
            raise errors.InvalidArgument("zstd-compressed input is not supported on this node "
                                         "(the zstandard library is not installed)")
        with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True,
                                                        closefd=False) as stream:
            yield stream


@dataclass(frozen=True)
class Written:
    """A file written into the ingest area: where, its digest and its size in bytes."""

    path: Path
    digest: str
    size: int


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    """Blobs under `root`/blobs/sha256 and the ingest area `root`/ingest."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blob_dir = self.root / "blobs" / "sha256"
        self.ingest_dir = self.root / "ingest"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)

    def clean_ingest(self) -> None:
        """Remove everything in the ingest area (leftovers of a crash); call only at start."""
        for entry in self.ingest_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    @contextlib.contextmanager
    def temp_dir(self) -> Iterator[Path]:
        """A private directory in the ingest area, removed with its contents afterwards."""
        path = Path(tempfile.mkdtemp(dir=self.ingest_dir))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def path(self, digest: str) -> Path:
        """Where the blob `digest` lives (whether or not it exists)."""
        return self.blob_dir / check_digest(digest)

    def has(self, digest: str) -> bool:
        """Whether the blob `digest` is committed."""
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        """Size in bytes of the committed blob `digest`; errors.NotFound if absent."""
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise errors.NotFound(f"blob {digest} not found") from None

    def read(self, digest: str) -> bytes:
        """The bytes of the committed blob `digest`; errors.NotFound if absent."""
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise errors.NotFound(f"blob {digest} not found") from None

    def digests(self) -> set[str]:
        """Every committed blob's digest."""
        return {"sha256:" + p.name for p in self.blob_dir.iterdir() if _HEX_RE.fullmatch(p.name)}

    def delete(self, digest: str) -> int:
        """Remove the blob `digest` if present; return the bytes freed."""
        path = self.path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def write_stream(self, source: BinaryIO, directory: Path, limit: int | None = None) -> Written:
        """Copy `source` into a new file in `directory` (inside ingest/), hashing and fsyncing it.

        With `limit`, a source longer than `limit` bytes is refused
        (errors.InvalidArgument) and nothing is kept.
        """
        digest = hashlib.sha256()
        size = 0
        fd, name = tempfile.mkstemp(dir=directory)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(_COPY_CHUNK):
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise errors.InvalidArgument(f"content larger than the {limit} bytes allowed")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            os.unlink(name)
            raise
        return Written(Path(name), "sha256:" + digest.hexdigest(), size)

    def write_decompressed(self, raw: BinaryIO, directory: Path) -> Written:
        """Like write_stream, decompressing `raw` first; corrupt input is errors.InvalidArgument."""
        corrupt: tuple[type[BaseException], ...] = (EOFError, lzma.LZMAError)
        if zstandard is not None:
            corrupt += (zstandard.ZstdError,)
        try:
            with decompressed(raw) as stream:
                return self.write_stream(stream, directory)
        except corrupt as exc:
            raise errors.InvalidArgument(f"corrupt compressed data: {exc}") from None
        except OSError as exc:
            # gzip and bz2 report bad data as an OSError without errno; disk errors have one.
            if exc.errno is None:
                raise errors.InvalidArgument(f"corrupt compressed data: {exc}") from None
            raise

    def commit(self, written: Written) -> Path:
        """Move a verified ingest file into place as blob `written.digest`; idempotent."""
        target = self.path(written.digest)
        if target.is_file():
            written.path.unlink(missing_ok=True)
            return target
        os.chmod(written.path, 0o644)
        os.rename(written.path, target)
        _fsync_dir(self.blob_dir)
        return target

    def put_bytes(self, data: bytes) -> str:
        """Store `data` as a blob (through ingest/) and return its digest."""
        digest = sha256_digest(data)
        if self.has(digest):
            return digest
        fd, name = tempfile.mkstemp(dir=self.ingest_dir)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        self.commit(Written(Path(name), digest, len(data)))
        return digest
