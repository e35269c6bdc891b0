"""Fixtures of the container unit tests: a real image store, a manager harness, cgroups."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.images.store import ImageStore
from agent.runtime.cgroups import open_cgroup

from .kit import Cgrouped, Harness, cgroup_dirs


@pytest.fixture
def state() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kran-manager-"))
    yield path
    shutil.rmtree(path)


@pytest.fixture
def store(state: Path) -> Iterator[ImageStore]:
    rootfs = state / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
    store = ImageStore(state / "images")
    store.import_rootfs(rootfs, "busybox:latest", changes=['CMD ["sh"]', "ENV PATH=/bin", "WORKDIR /srv"])
    yield store
    store.close()


@pytest.fixture
def harness(state: Path, store: ImageStore) -> Harness:
    return Harness(state, store)


@pytest.fixture
def cgrouped_factory() -> Iterator:
    """Start `argv` in a new cgroup with `resources` (OCI form); everything is removed afterwards."""
    parent = f"kran-test-ops-{os.getpid()}-{secrets.token_hex(3)}"
    made: list[tuple[Cgrouped, object]] = []

    def start(argv: list[str], resources: dict | None = None, **popen) -> Cgrouped:
        name = f"c{len(made)}"
        group = open_cgroup(parent, name)
        group.create(resources or {})
        # The child waits for a line on stdin until it is in the group, so all its life is accounted there.
        read_fd, write_fd = os.pipe()
        process = subprocess.Popen(["/bin/sh", "-c", 'read _; exec "$@"', "sh", *argv], stdin=read_fd, **popen)
        os.close(read_fd)
        cgrouped = Cgrouped(parent, name, process)
        made.append((cgrouped, group))
        group.add(process.pid)
        os.write(write_fd, b"go\n")
        os.close(write_fd)
        return cgrouped

    yield start
    for cgrouped, group in made:
        if cgrouped.process.poll() is None:
            os.kill(cgrouped.process.pid, signal.SIGKILL)
        cgrouped.process.wait()
        group.remove()
    for path in cgroup_dirs(parent):
        if path.exists():
            path.rmdir()
