"""Fixtures shared by the agent's unit tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.linux import mounts_below, unmount


@pytest.fixture
def sandbox() -> Iterator[Path]:
    """A scratch directory (outside /var/lib/kran); fails the test if a mount is left below it."""
    path = Path(tempfile.mkdtemp(prefix="kran-layers-"))
    leaked = []
    try:
        yield path
    finally:
        for point in mounts_below(path):
            leaked.append(point)
            unmount(point)
        shutil.rmtree(path)
    assert not leaked, f"mounts left behind: {leaked}"
