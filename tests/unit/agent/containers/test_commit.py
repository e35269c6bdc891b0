"""docker commit's layer from a container's upper dir, and the image it makes, mounted again."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.containers.diff import write_layer
from agent.containers.ops import commit_config
from agent.images.store import ImageStore
from agent.linux import mount_overlay, unmount
from kran.api.v1 import containers_pb2

from .kit import container_fs, image


@pytest.fixture
def store(sandbox: Path) -> Iterator[ImageStore]:  # noqa: F811
    store = ImageStore(sandbox / "images")
    yield store
    store.close()


@contextlib.contextmanager
def image_root(store: ImageStore, image_id: str, sandbox: Path) -> Iterator[Path]:  # noqa: F811
    """The image's root filesystem, read-only, as a new container would start from it."""
    view = sandbox / "view"
    view.mkdir()
    mount_overlay(view, store.image_layers(image_id))
    try:
        yield view
    finally:
        unmount(view)
        view.rmdir()


def _layer(upper: Path) -> tuple[int, dict[str, tarfile.TarInfo]]:
    buffer = io.BytesIO()
    count = write_layer(upper, buffer)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        return count, {m.name: m for m in tar.getmembers()}


def _change(root: Path) -> None:
    for name in ("proc", "sys", "dev"):
        (root / name).mkdir()
    for name in ("hostname", "hosts", "resolv.conf"):
        (root / "etc" / name).write_text("runtime's")
    (root / "hello").write_text("hi\n")
    os.chown(root / "hello", 1000, 1001)
    (root / "hello").chmod(0o4750)  # after chown, which clears setuid
    os.link(root / "hello", root / "hello-again")
    os.symlink("/hello", root / "link")
    os.mkfifo(root / "fifo")
    (root / "bin/cat").unlink()
    shutil.rmtree(root / "srv/sub")
    (root / "srv/sub").mkdir()
    (root / "srv/sub/y").write_text("y")
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))


def test_layer_entries(sandbox: Path, store: ImageStore) -> None:  # noqa: F811
    fs = container_fs(store.image_layers(image(store, sandbox)), sandbox)
    with fs.mounted() as root:
        _change(root)
    count, members = _layer(fs.upper)
    assert count == len(members)
    assert set(members) == {"bin", "bin/.wh.cat", "hello", "hello-again", "link", "fifo",
                            "srv", "srv/sub", "srv/sub/.wh..wh..opq", "srv/sub/y"}
    hello = members["hello"]
    assert (hello.mode, hello.uid, hello.gid, hello.size) == (0o4750, 1000, 1001, 3)
    assert members["hello-again"].islnk() and members["hello-again"].linkname == "hello"
    assert members["link"].issym() and members["link"].linkname == "/hello"
    assert members["fifo"].isfifo()


def test_commit_round_trip(sandbox: Path, store: ImageStore) -> None:  # noqa: F811
    parent = image(store, sandbox)
    fs = container_fs(store.image_layers(parent), sandbox)
    with fs.mounted() as root:
        _change(root)
    config = containers_pb2.ContainerConfig(cmd=["sh", "-c", "echo hi > /hello"], env=["PATH=/bin", "A=1"],
                                            working_dir="/srv", labels={"x": "y"})
    layer = sandbox / "layer.tar"
    with open(layer, "wb") as out:
        write_layer(fs.upper, out)
    view = store.commit(parent, layer, "snap", "a message", "me", ["ENV B=2"], commit_config(config), "c" * 64)
    assert len(view.layers) == len(store.inspect(parent).layers) + 1
    doc = json.loads(view.config)
    assert doc["config"] == {"Cmd": ["sh", "-c", "echo hi > /hello"], "Env": ["PATH=/bin", "A=1", "B=2"],
                             "WorkingDir": "/srv", "Labels": {"x": "y"}}
    assert doc["history"][-1]["created_by"] == "sh -c echo hi > /hello"
    with image_root(store, view.id, sandbox) as root:
        assert (root / "hello").read_text() == "hi\n"
        st = (root / "hello").stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_nlink) == (0o4750, 1000, 1001, 2)
        assert os.readlink(root / "link") == "/hello"
        assert stat.S_ISFIFO((root / "fifo").lstat().st_mode)
        assert not os.path.lexists(root / "bin/cat") and (root / "bin/busybox").is_file()
        assert sorted(os.listdir(root / "srv/sub")) == ["y"]
        assert sorted(os.listdir(root / "opt")) == ["c"]
        # Left out as Docker leaves them out: the runtime's mount points, device nodes.
        assert not any(os.path.lexists(root / p) for p in ("proc", "sys", "dev", "null", "etc/hostname"))
        assert (root / "etc/passwd").is_file()
    # The new image runs: a container over its layers sees the committed files.
    again = container_fs(store.image_layers(view.id), sandbox)
    with again.mounted() as root:
        assert (root / "hello").read_text() == "hi\n"


def test_commit_of_an_unchanged_container(sandbox: Path, store: ImageStore) -> None:  # noqa: F811
    parent = image(store, sandbox)
    fs = container_fs(store.image_layers(parent), sandbox)
    with fs.mounted() as root:
        (root / "proc").mkdir()
        (root / "etc/hosts").write_text("")
    layer = sandbox / "layer.tar"
    with open(layer, "wb") as out:
        assert write_layer(fs.upper, out) == 0
    view = store.commit(parent, layer, None, "", "", [], commit_config(containers_pb2.ContainerConfig()))
    assert len(view.layers) == len(store.inspect(parent).layers)
    assert json.loads(view.config)["history"][-1]["empty_layer"] is True
