"""Real containers: a busybox rootfs, a forkserver and a Runtime with a private cgroup parent.

The test process makes itself a child subreaper, so the shims the
forkserver double-forks become its children when their middle parent exits
and Runtime.delete can reap them (this machine's pid 1 does not reap).
Every container a test leaves behind is deleted at teardown, by id, and the
test fails if a mount, cgroup, shim or bundle survives.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import linux
from agent.runtime.cgroups import is_v2
from tests.procs import mounts_under
from agent.runtime.forkserver import ForkServer
from agent.runtime.runtime import Runtime
from agent.runtime.spec import ContainerSpec
from agent.runtime.state import process_start_time

BUSYBOX = Path("/bin/busybox")
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\ndaemon:x:1:nobody\nnogroup:x:65534:\n"


def run(coro):
    """Run one coroutine to completion (the tests are plain functions)."""
    return asyncio.run(coro)


@pytest.fixture(scope="session", autouse=True)
def subreaper() -> None:
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)


@pytest.fixture(scope="session")
def busybox_rootfs() -> Iterator[Path]:
    """A busybox root: /bin/busybox, its applets as symlinks, /etc/passwd and /etc/group."""
    root = Path(tempfile.mkdtemp(prefix="kran-busybox-"))
    (root / "bin").mkdir()
    (root / "etc").mkdir()
    (root / "tmp").mkdir(mode=0o1777)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (root / "etc" / "not-executable").write_text("#!/bin/sh\necho no\n")
    yield root
    shutil.rmtree(root)


@pytest.fixture(scope="module")
def forkserver() -> Iterator[ForkServer]:
    server = ForkServer.start()
    yield server
    if server.process.poll() is None:
        server.stop()


def cgroup_dirs(parent: str, name: str | None = None) -> list[Path]:
    """The cgroup directories for parent[/name] that exist on this host."""
    root = Path("/sys/fs/cgroup")
    tail = f"{parent}/{name}" if name else parent
    if is_v2(root):
        candidates = [root / tail]
    else:
        # Every hierarchy, not only the controllers kran uses: runc (the
        # cross-check) makes the parent in all of them.
        candidates = [h / tail for h in root.iterdir() if h.is_dir() and not h.is_symlink()]
    return [p for p in candidates if p.exists()]


def leftovers(runtime: Runtime, container_id: str, shim_pid: int | None = None) -> list[str]:
    """Everything of a deleted container that is still there (should be nothing)."""
    bundle = runtime.containers_dir / container_id
    found = [f"mount {m}" for m in mounts_under(bundle)]
    found += [f"cgroup {p}" for p in cgroup_dirs(runtime.cgroup_parent, container_id)]
    if bundle.exists():
        found.append(f"bundle {bundle}")
    if shim_pid and process_start_time(shim_pid) is not None:
        found.append(f"shim {shim_pid}")
    return found


@pytest.fixture
def runtime(forkserver: ForkServer, tmp_path: Path) -> Iterator[Runtime]:
    """A Runtime whose containers are all gone, without a trace, after the test."""
    parent = f"kran-test-{os.getpid()}"
    rt = Runtime(tmp_path / "state", forkserver, cgroup_parent=parent)
    yield rt
    traces = []
    for container_id in rt.list():
        shim_pid = rt.state(container_id).shim_pid
        run(rt.delete(container_id, force=True))
        traces += leftovers(rt, container_id, shim_pid)
    for path in cgroup_dirs(parent):
        path.rmdir()
    assert not traces


@pytest.fixture
def spec(busybox_rootfs: Path):
    """A ContainerSpec factory over the busybox rootfs with a fresh id."""
    counter = iter(range(1_000_000))

    def make(*args: str, **kwargs) -> ContainerSpec:
        kwargs.setdefault("id", f"c{os.getpid()}x{next(counter)}")
        return ContainerSpec(lowers=[busybox_rootfs], args=list(args), **kwargs)

    return make
