"""A real etcd for the controller's unit tests (one per test module)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import Etcd, Processes


@pytest.fixture(scope="module")
def etcd() -> Iterator[Etcd]:
    workdir = Path(tempfile.mkdtemp(prefix="kran-etcd-"))
    group = Processes(workdir)
    try:
        yield group.etcd(workdir / "data")
    finally:
        group.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
