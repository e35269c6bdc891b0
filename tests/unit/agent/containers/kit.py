"""Fixtures for the container inspection tests: an image's layers, a container's overlay, a real cgroup.

The image is busybox (Debian's static binary and a few applets) plus a
second layer that adds /etc, /data and /srv and makes /opt opaque, so
whiteouts and opaque directories exist below the container too.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


from kran.api.v1 import containers_pb2, nodes_pb2

from agent.images.layers import LayerStore
from agent.containers.manager import ContainerManager
from agent.images.store import ImageStore
from agent.linux import mount_overlay, unmount
from agent.runtime.runtime import Runtime
from agent.runtime.cgroups import CGROUP_ROOT, V1_CONTROLLERS, is_v2
from tests.unit.agent.images.hostile import directory, reg, symlink, write_tar
from tests.unit.agent.images.imagekit import busybox_rootfs

SECOND_LAYER = (
    directory("etc"), reg("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"), reg("etc/group", b"root:x:0:\n"),
    directory("data"), reg("data/keep", b"keep"), reg("data/gone", b"gone"),
    directory("srv"), directory("srv/sub"), reg("srv/sub/x", b"x"),
    directory("opt"), reg("opt/.wh..wh..opq", b""), reg("opt/c", b"c"),
    symlink("escape", "/"),
)


def _base_layer(path: Path) -> Path:
    """busybox, plus /opt/a and /opt/b that the second layer's opaque /opt hides."""
    busybox_rootfs(path)
    with tarfile.open(path, "a") as tar:
        for name in ("opt/a", "opt/b"):
            info = tarfile.TarInfo(name)
            tar.addfile(info)
    return path


def image_layers(sandbox: Path) -> list[Path]:
    """The two layers' dirs in a LayerStore under `sandbox`, top first."""
    store = LayerStore(sandbox / "layers")
    base = store.apply(None, "sha256:" + "1" * 64, _base_layer(sandbox / "base.tar"))
    top = store.apply(base.chain_id, "sha256:" + "2" * 64, write_tar(sandbox / "second.tar", *SECOND_LAYER))
    return store.lowers(top.chain_id)


def image(store: ImageStore, sandbox: Path) -> str:
    """The same image, in an ImageStore: its id."""
    base = store.import_rootfs(_base_layer(sandbox / "base.tar"), "", ['CMD ["sh"]'])
    with store.temp_dir() as work:
        layer = write_tar(work / "second.tar", *SECOND_LAYER)
        return store.commit(base.id, layer, "kit:latest", "", "", [], {}).id


@dataclass
class ContainerFS:
    """A container's filesystem: `dir` holds upper/ and work/; `root` is mounted while `mounted()` lasts."""

    lowers: list[Path]
    dir: Path

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @contextlib.contextmanager
    def mounted(self) -> Iterator[Path]:
        """The container's root as its runtime mounts it (read-write over the layers)."""
        root = self.dir / "rootfs"
        root.mkdir(exist_ok=True)
        mount_overlay(root, self.lowers, self.upper, self.work)
        try:
            yield root
        finally:
            unmount(root)


def container_fs(lowers: list[Path], parent: Path) -> ContainerFS:
    """A fresh, empty container filesystem over `lowers`."""
    fs = ContainerFS(lowers, parent / f"container-{secrets.token_hex(4)}")
    fs.upper.mkdir(parents=True)
    fs.work.mkdir()
    return fs


@dataclass
class Cgrouped:
    """A process of ours in a cgroup of its own: <parent>/<name>, like a container's."""

    parent: str
    name: str
    process: subprocess.Popen


def cgroup_dirs(parent: str) -> list[Path]:
    """The cgroup directories of `parent` on this host."""
    if is_v2(CGROUP_ROOT):
        return [CGROUP_ROOT / parent]
    return [CGROUP_ROOT / c / parent for c in V1_CONTROLLERS]


ID1, ID2 = "a1" * 32, "a2" * 32


class Harness:
    def __init__(self, state: Path, store: ImageStore) -> None:
        self.reports: list[nodes_pb2.ContainerReport] = []
        self.manager = ContainerManager(state, store, Runtime(state / "runtime", forkserver=None),
                                        node_id="node1", node_name="host1", report=self.reports.append)

    async def create(self, container_id: str, name: str = "", **config) -> containers_pb2.Container:
        request = containers_pb2.CreateContainerRequest(
            id=container_id, name=name, config=containers_pb2.ContainerConfig(**{"image": "busybox", **config}))
        return self.manager.message(await self.manager.create(request))
