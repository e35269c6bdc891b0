"""go-units' RAMInBytes, as `--memory` reads sizes."""

from __future__ import annotations

import pytest

from kran.units import ram_in_bytes


@pytest.mark.parametrize("text, size", [
    ("32", 32), ("32b", 32), ("32B", 32), ("32k", 32 << 10), ("32K", 32 << 10),
    ("32kb", 32 << 10), ("32Kib", 32 << 10), ("32KIB", 32 << 10), ("32mb", 32 << 20),
    ("32Gb", 32 << 30), ("32Tb", 32 << 40), ("32PB", 32 << 50), ("32.3", 32),
    ("32.3k", int(32.3 * 1024)), ("32 mb", 32 << 20)])
def test_ram_in_bytes(text, size):
    assert ram_in_bytes(text) == size


@pytest.mark.parametrize("text", ["", "hello", "-32", " 32 ", "32b ", "32bb", "32kk",
                                  "32.3.4k"])
def test_ram_in_bytes_refuses(text):
    with pytest.raises(ValueError):
        ram_in_bytes(text)
