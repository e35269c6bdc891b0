"""ImageStore.commit: a child image with one more layer, the container's config and history."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.images.commit import child_config
from agent.images.store import ImageStore
from agent.linux import mount_overlay, unmount
from tests.unit.agent.images.hostile import directory, reg, whiteout, write_tar
from tests.unit.agent.images.imagekit import busybox_rootfs
from kran import errors

CONTAINER = {"Cmd": ["sh", "-c", "echo hi > /hello"], "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/",
             "User": "", "Labels": {"team": "core"}}


@pytest.fixture
def store(sandbox: Path) -> Iterator[ImageStore]:  # noqa: F811
    store = ImageStore(sandbox / "images")
    yield store
    store.close()


@pytest.fixture
def parent(store: ImageStore, sandbox: Path) -> str:  # noqa: F811
    rootfs = busybox_rootfs(sandbox / "rootfs.tar")
    return store.import_rootfs(rootfs, "busybox", ['CMD ["sh"]', "ENV A=0 B=2", "EXPOSE 80"], "base").id


@contextlib.contextmanager
def mounted(store: ImageStore, image: str) -> Iterator[Path]:
    """The image's root filesystem, read-only."""
    lowers = store.image_layers(image)
    view = Path(tempfile.mkdtemp(prefix="kran-view-"))
    empty = Path(tempfile.mkdtemp(prefix="kran-empty-"))
    try:
        mount_overlay(view, lowers + [empty] if len(lowers) < 2 else lowers)
        try:
            yield view
        finally:
            unmount(view)
    finally:
        view.rmdir()
        shutil.rmtree(empty)


def test_commit_adds_one_layer_and_a_history_entry(store, parent, sandbox):
    layer = write_tar(sandbox / "layer.tar", reg("hello", b"hi\n"), directory("etc"),
                      reg("etc/motd", b"welcome"), whiteout("bin/cat"))
    view = store.commit(parent, layer, "snap:v1", "made by a test", "Ann <ann@example.com>",
                        ['CMD ["cat", "/hello"]'], CONTAINER, container_id="c" * 64)
    assert view.repo_tags == ["snap:v1"]
    config = json.loads(view.config)
    base = json.loads(store.inspect(parent).config)
    assert config["rootfs"]["diff_ids"] == base["rootfs"]["diff_ids"] + [view.layers[-1].diff_id]
    assert len(view.layers) == 2
    assert config["config"] == {"Cmd": ["cat", "/hello"], "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/",
                                "Labels": {"team": "core"}, "ExposedPorts": {"80/tcp": {}}}
    assert config["author"] == "Ann <ann@example.com>"
    assert config["container"] == "c" * 64
    assert config["history"][:-1] == base["history"]
    assert config["history"][-1] == {"created": config["created"], "created_by": "sh -c echo hi > /hello",
                                     "author": "Ann <ann@example.com>", "comment": "made by a test"}
    assert (config["os"], config["architecture"]) == (base["os"], base["architecture"])
    with mounted(store, view.id) as root:
        assert (root / "hello").read_bytes() == b"hi\n"
        assert (root / "etc/motd").read_bytes() == b"welcome"
        assert not os.path.lexists(root / "bin/cat")
        assert (root / "bin/busybox").is_file()
    # The parent is untouched: its blobs and layers are shared, not moved.
    with mounted(store, parent) as root:
        assert (root / "bin/cat").is_symlink() and not (root / "hello").exists()
    assert store.blobs.has(base["rootfs"]["diff_ids"][0])


def test_commit_of_an_unchanged_container_is_an_empty_layer(store, parent, sandbox):
    layer = write_tar(sandbox / "empty.tar")
    view = store.commit(parent, layer, None, "", "", [], CONTAINER)
    config = json.loads(view.config)
    assert view.repo_tags == [] and len(view.layers) == 1
    assert config["history"][-1]["empty_layer"] is True
    assert "author" not in config and "comment" not in config["history"][-1]


def test_commit_moves_a_tag(store, parent, sandbox):
    layer = write_tar(sandbox / "layer.tar", reg("a"))
    first = store.commit(parent, layer, "snap", "one", "", [], CONTAINER)
    layer = write_tar(sandbox / "layer2.tar", reg("b"))
    second = store.commit(first.id, layer, "snap", "two", "", [], CONTAINER)
    assert store.resolve("snap") == second.id
    assert store.inspect(first.id).repo_tags == []
    assert len(second.layers) == 3


@pytest.mark.parametrize("changes, ref, kind", [
    (["FROM busybox"], None, errors.InvalidArgument),
    (["ENV"], None, errors.InvalidArgument),
    ([], "Bad:Ref", errors.InvalidArgument),
    ([], "x@sha256:" + "a" * 64, errors.InvalidArgument),
])
def test_bad_input_stores_nothing(store, parent, sandbox, changes, ref, kind):
    layer = write_tar(sandbox / "layer.tar", reg("hello"))
    before = (store.blobs.digests(), store.layers.list(), store.stats())
    with pytest.raises(kind):
        store.commit(parent, layer, ref, "", "", changes, CONTAINER)
    assert (store.blobs.digests(), store.layers.list(), store.stats()) == before


def test_unknown_parent_and_hostile_layer(store, parent, sandbox):
    layer = write_tar(sandbox / "layer.tar", reg("hello"))
    with pytest.raises(errors.NotFound, match="No such image"):
        store.commit("sha256:" + "0" * 64, layer, None, "", "", [], CONTAINER)
    evil = write_tar(sandbox / "evil.tar", reg("../escape"))
    before = store.blobs.digests()
    with pytest.raises(errors.InvalidArgument, match="invalid layer"):
        store.commit(parent, evil, None, "", "", [], CONTAINER)
    assert store.blobs.digests() == before
    assert not (sandbox / "escape").exists()


def test_child_config_clears_what_the_container_cleared():
    parent = {"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/init"], "Cmd": ["x"],
                                                                   "StopSignal": "SIGQUIT"},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]}, "history": []}
    doc = child_config(parent, "sha256:" + "2" * 64, {"Cmd": ["sh"], "Entrypoint": [], "StopSignal": None},
                       ["ENTRYPOINT /bin/run"], "", "", "2024-01-01T00:00:00Z")
    assert doc["config"] == {"Entrypoint": ["/bin/sh", "-c", "/bin/run"], "StopSignal": "SIGQUIT"}
    assert doc["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
    with pytest.raises(errors.InvalidArgument):
        child_config(parent, None, {"Bogus": 1}, [], "", "", "2024-01-01T00:00:00Z")
