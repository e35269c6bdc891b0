"""The content store: digests checked before paths, blobs hashed while written, decompression."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import shutil
import tempfile
from pathlib import Path

import pytest
import zstandard

from agent.images.content import BlobStore, check_digest, compression_of, decompressed, sha256_digest
from kran import errors

DATA = b"hello layer\n" * 1000


@pytest.fixture
def blobs():
    root = Path(tempfile.mkdtemp(prefix="kran-content-"))
    try:
        yield BlobStore(root)
    finally:
        shutil.rmtree(root)


@pytest.mark.parametrize("bad", [
    "sha256:" + "A" * 64, "sha256:" + "a" * 63, "sha512:" + "a" * 64, "a" * 64,
    "sha256:../../../../etc/passwd", "sha256:" + "a" * 62 + "/.", "", None,
])
def test_check_digest_refuses_anything_but_sha256_hex(bad):
    with pytest.raises(errors.InvalidArgument, match="expected sha256"):
        check_digest(bad)


def test_check_digest_returns_hex():
    assert check_digest("sha256:" + "0f" * 32) == "0f" * 32


def test_write_stream_hashes_and_commit_moves_into_place(blobs):
    written = blobs.write_stream(io.BytesIO(DATA), blobs.ingest_dir)
    assert written.digest == sha256_digest(DATA) and written.size == len(DATA)
    assert written.path.parent == blobs.ingest_dir
    path = blobs.commit(written)
    assert path == blobs.blob_dir / hashlib.sha256(DATA).hexdigest()
    assert path.read_bytes() == DATA and not written.path.exists()
    # Committing the same content again keeps one blob and drops the ingest file.
    again = blobs.write_stream(io.BytesIO(DATA), blobs.ingest_dir)
    assert blobs.commit(again) == path and not again.path.exists()
    assert blobs.digests() == {written.digest}
    assert blobs.read(written.digest) == DATA and blobs.size(written.digest) == len(DATA)


def test_put_bytes_delete_and_missing(blobs):
    digest = blobs.put_bytes(b"{}")
    assert blobs.has(digest)
    assert blobs.delete(digest) == 2
    assert not blobs.has(digest) and blobs.delete(digest) == 0
    with pytest.raises(errors.NotFound):
        blobs.read(digest)
    assert list(blobs.ingest_dir.iterdir()) == []


def test_limit_refuses_and_keeps_nothing(blobs):
    with pytest.raises(errors.InvalidArgument, match="larger than"):
        blobs.write_stream(io.BytesIO(DATA), blobs.ingest_dir, limit=10)
    assert list(blobs.ingest_dir.iterdir()) == []


@pytest.mark.parametrize("kind, compress", [
    (None, lambda d: d),
    ("gzip", gzip.compress),
    ("bzip2", bz2.compress),
    ("xz", lzma.compress),
    ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)),
])
def test_decompression_by_magic_bytes(blobs, kind, compress):
    packed = compress(DATA)
    assert compression_of(packed[:6]) == kind
    with decompressed(io.BytesIO(packed)) as stream:
        assert stream.read() == DATA
    written = blobs.write_decompressed(io.BytesIO(packed), blobs.ingest_dir)
    assert written.digest == sha256_digest(DATA)


def test_multi_frame_zstd_and_multi_member_gzip(blobs):
    zstd = zstandard.ZstdCompressor()
    two_frames = zstd.compress(DATA[:500]) + zstd.compress(DATA[500:])
    assert blobs.write_decompressed(io.BytesIO(two_frames), blobs.ingest_dir).digest == sha256_digest(DATA)
    two_members = gzip.compress(DATA[:500]) + gzip.compress(DATA[500:])
    assert blobs.write_decompressed(io.BytesIO(two_members), blobs.ingest_dir).digest == sha256_digest(DATA)


@pytest.mark.parametrize("corrupt", [
    gzip.compress(DATA)[:40], b"\x1f\x8b" + b"garbage" * 10, b"BZh9garbage", b"\xfd7zXZ\x00broken",
    b"\x28\xb5\x2f\xfdbroken",
])
def test_corrupt_compressed_input_is_invalid_argument(blobs, corrupt):
    with pytest.raises(errors.InvalidArgument, match="corrupt compressed data"):
        blobs.write_decompressed(io.BytesIO(corrupt), blobs.ingest_dir)
    assert list(blobs.ingest_dir.iterdir()) == []


def test_clean_ingest_and_temp_dir(blobs):
    (blobs.ingest_dir / "leftover").write_bytes(b"x")
    (blobs.ingest_dir / "dir").mkdir()
    (blobs.ingest_dir / "dir" / "f").write_bytes(b"x")
    blobs.clean_ingest()
    assert list(blobs.ingest_dir.iterdir()) == []
    with blobs.temp_dir() as work:
        (work / "file").write_bytes(b"x")
        assert work.parent == blobs.ingest_dir
    assert not work.exists()
