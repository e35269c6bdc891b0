"""Digest and size checks, DiffIDs through gzip and zstd, and the decompression-bomb cap."""

from __future__ import annotations

import gzip
import hashlib
import io
import os

import pytest
import zstandard

from agent.distribution.verify import BlobCheck, BombLimit, LayerWriter, check_bytes
from kran import errors


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def feed(writer: LayerWriter, data: bytes, piece: int = 7000) -> tuple[str, int]:
    for start in range(0, len(data), piece):
        writer.write(data[start:start + piece])
    return writer.finish()


def test_blob_check_accepts_the_right_bytes() -> None:
    data = os.urandom(5000)
    check = BlobCheck(digest(data), len(data))
    check.update(data[:10])
    check.update(data[10:])
    check.finish()
    check_bytes(data, digest(data), len(data), "config")


def test_blob_check_refuses_more_than_the_size_at_once() -> None:
    check = BlobCheck(digest(b"abc"), 3)
    check.update(b"ab")
    with pytest.raises(errors.InvalidArgument, match="more than its declared size of 3"):
        check.update(b"cd")


def test_blob_check_counts_as_bytes_arrive_and_hashes_them_later() -> None:
    data = os.urandom(3000)
    check = BlobCheck(digest(data), len(data))
    check.count(1000)
    check.count(2000)
    assert check.received == 3000
    check.hash(data[:1500])
    check.hash(data[1500:])
    check.finish()
    with pytest.raises(errors.InvalidArgument, match="more than its declared size of 3000"):
        check.count(1)  # refused before anything is hashed


def test_blob_check_refuses_short_or_wrong_content() -> None:
    short = BlobCheck(digest(b"abc"), 3)
    short.update(b"ab")
    with pytest.raises(errors.InvalidArgument, match="got 2 bytes, its descriptor says 3"):
        short.finish()
    with pytest.raises(errors.InvalidArgument, match="digest mismatch"):
        check_bytes(b"abd", digest(b"abc"), 3, "layer")


def test_blob_check_refuses_a_malformed_digest() -> None:
    with pytest.raises(errors.InvalidArgument):
        BlobCheck("sha256:../../etc", 3)


@pytest.mark.parametrize("compress", [
    lambda d: d,
    lambda d: gzip.compress(d, mtime=0),
    lambda d: gzip.compress(d[:3000], mtime=0) + gzip.compress(d[3000:], mtime=0),  # two members
    lambda d: gzip.compress(d, mtime=0) + b"\0" * 1024,                               # zero padding
    lambda d: zstandard.ZstdCompressor().compress(d),
    lambda d: zstandard.ZstdCompressor().compress(d[:100]) + zstandard.ZstdCompressor().compress(d[100:]),
], ids=["plain", "gzip", "gzip-members", "gzip-padding", "zstd", "zstd-frames"])
def test_layer_writer_gives_the_diff_id(compress) -> None:
    data = os.urandom(20000) + b"\0" * 3_000_000
    blob = compress(data)
    out = io.BytesIO()
    assert feed(LayerWriter(out, len(blob), "layer"), blob) == (digest(data), len(data))
    assert out.getvalue() == data


def test_layer_writer_handles_tiny_pieces() -> None:
    data = b"hello layer"
    blob = gzip.compress(data)
    assert feed(LayerWriter(io.BytesIO(), len(blob), "layer"), blob, piece=1) == (digest(data), len(data))
    assert LayerWriter(io.BytesIO(), 2, "layer").finish() == (digest(b""), 0)


def test_bomb_cap_is_ratio_or_floor() -> None:
    limit = BombLimit(ratio=64, floor=1 << 30)
    assert limit.cap(1000) == 1 << 30
    assert limit.cap(100 << 20) == 6400 << 20


@pytest.mark.parametrize("compress", [lambda d: gzip.compress(d), lambda d: zstandard.ZstdCompressor().compress(d)],
                         ids=["gzip", "zstd"])
def test_a_decompression_bomb_is_refused_before_it_is_written(compress) -> None:
    data = b"\0" * (8 << 20)
    blob = compress(data)
    out = io.BytesIO()
    writer = LayerWriter(out, len(blob), "layer abc", BombLimit(ratio=64, floor=1 << 20))
    with pytest.raises(errors.InvalidArgument, match="decompression bomb"):
        feed(writer, blob)
    assert out.tell() <= (1 << 20) + (1 << 20)  # at most the cap plus one bounded piece


def test_corrupt_or_truncated_gzip() -> None:
    blob = gzip.compress(os.urandom(10000))
    with pytest.raises(errors.InvalidArgument, match="ends early"):
        feed(LayerWriter(io.BytesIO(), len(blob), "layer"), blob[:-100])
    broken = bytearray(blob)
    broken[20:40] = b"\xff" * 20
    with pytest.raises(errors.InvalidArgument, match="corrupt"):
        feed(LayerWriter(io.BytesIO(), len(blob), "layer"), bytes(broken))
