"""gzip of pushed layers in parallel blocks: a valid stream, the same bytes every time, stored blocks for noise."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import random
import zlib
from pathlib import Path

import pytest

from agent.distribution.blockgzip import BLOCK, BlockGzip, deflate_block, stored, worth_deflating


def text(size: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    words = [b"layer", b"image", b"registry", b"push", b"pull", b"digest", b"blob", b"manifest"]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:size])


def noise(size: int, seed: int = 2) -> bytes:
    return random.Random(seed).randbytes(size)


def compress(path: Path, level: int = 1, size: int = 3 * BLOCK) -> tuple[list[bytes], BlockGzip]:
    async def run() -> list[bytes]:
        return [chunk async for chunk in stream.chunks(size)]
    stream = BlockGzip(path, level)
    return asyncio.run(run()), stream


@pytest.mark.parametrize("content", [
    b"",
    b"one small line\n",
    text(BLOCK),                                                    # exactly one block
    text(2 * BLOCK + 17),
    noise(BLOCK + 1000),
    text(BLOCK + 5) + noise(2 * BLOCK + 77) + bytes(3 * BLOCK) + text(100_000),
], ids=["empty", "small", "one-block", "text", "noise", "mixed"])
def test_the_pieces_make_one_gzip_stream_of_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "layer.tar"
    path.write_bytes(content)
    chunks, stream = compress(path)
    blob = b"".join(chunks)
    assert gzip.decompress(blob) == content
    assert zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(blob) == content  # one member, nothing after it
    assert stream.digest() == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert stream.read == len(content)
    assert all(len(chunk) >= 3 * BLOCK for chunk in chunks[:-1])


def test_the_same_file_gives_the_same_bytes(tmp_path: Path) -> None:
    path = tmp_path / "layer.tar"
    path.write_bytes(text(3 * BLOCK) + noise(BLOCK))
    first, _ = compress(path, size=BLOCK)
    again, _ = compress(path, size=4 * BLOCK)
    assert b"".join(first) == b"".join(again)
    assert b"".join(first)[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"  # no name, time 0


def test_text_shrinks_like_one_stream_and_noise_is_stored(tmp_path: Path) -> None:
    words = text(4 * BLOCK)
    path = tmp_path / "text.tar"
    path.write_bytes(words)
    blob = b"".join(compress(path)[0])
    assert len(blob) < len(gzip.compress(words, 1)) * 1.02  # each block primed with the window before it
    assert worth_deflating(words[:BLOCK])
    random_bytes = noise(BLOCK)
    assert not worth_deflating(random_bytes)
    assert deflate_block(random_bytes, b"", 1) == stored(random_bytes)
    assert len(stored(random_bytes)) == BLOCK + 5 * -(-BLOCK // 0xFFFF)


def test_a_block_primed_with_its_window_decodes_after_it() -> None:
    before, block = text(40_000, seed=3), text(70_000, seed=3)[20_000:]
    inflate = zlib.decompressobj(-zlib.MAX_WBITS)
    first = inflate.decompress(deflate_block(before, b"", 6))
    assert first + inflate.decompress(deflate_block(block, before[-32768:], 6)) == before + block


def test_level_zero_stores_everything(tmp_path: Path) -> None:
    path = tmp_path / "layer.tar"
    path.write_bytes(text(BLOCK))
    blob = b"".join(compress(path, level=0)[0])
    assert gzip.decompress(blob) == text(BLOCK)
    assert len(blob) > BLOCK


def test_a_file_shorter_than_it_was_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "layer.tar"
    path.write_bytes(noise(3 * BLOCK))  # stored: the first piece comes before the rest is read again
    stream = BlockGzip(path, 1)

    async def run() -> None:
        async for _ in stream.chunks(BLOCK):
            path.write_bytes(b"short")

    with pytest.raises(OSError, match="expected at offset"):
        asyncio.run(run())
