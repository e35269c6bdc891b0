"""Terminal helpers: raw mode always restored, sizes, and the output/stdin pump."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import termios
import threading

import pytest

from cli.streams import raw_terminal, terminal_size, write_all


@pytest.fixture
def terminal():
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    yield follower
    os.close(leader)
    os.close(follower)


def test_raw_mode_is_restored_even_after_an_error(terminal):
    before = termios.tcgetattr(terminal)
    with pytest.raises(RuntimeError):
        with raw_terminal(terminal):
            assert not termios.tcgetattr(terminal)[3] & termios.ICANON
            raise RuntimeError("boom")
    assert termios.tcgetattr(terminal) == before


def test_raw_mode_skips_what_is_not_a_terminal():
    read, write = os.pipe()
    try:
        with raw_terminal(read):
            pass
    finally:
        os.close(read)
        os.close(write)


def test_terminal_size_of_a_pty(terminal):
    assert terminal_size(terminal) == (30, 100)


def test_write_all_writes_everything_to_a_pipe():
    read, write = os.pipe()
    data = os.urandom(200_000)
    got = bytearray()
    try:
        os.set_blocking(read, True)
        reader = threading.Thread(target=lambda: got.extend(_drain(read)))
        reader.start()
        write_all(write, data)
        os.close(write)
        reader.join(10)
    finally:
        os.close(read)
    assert bytes(got) == data


def _drain(fd):
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)
