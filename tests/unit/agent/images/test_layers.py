"""The layer store: chain ids, layers applied over overlay mounts, whiteouts, hostile chains, recovery."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.images.layers import LayerInfo, LayerStore, chain_id
from agent.linux import mount_overlay, mounts_below, unmount
from tests.unit.agent.images.hostile import directory, hardlink, reg, symlink, whiteout, write_tar
from kran import errors


def _diff_id(n: int) -> str:
    return "sha256:" + f"{n:x}".rjust(64, "0")


@pytest.fixture
def store(sandbox: Path) -> LayerStore:
    return LayerStore(sandbox / "layers")


@contextlib.contextmanager
def merged(store: LayerStore, chain: str, sandbox: Path) -> Iterator[Path]:
    """The chain's root filesystem, as a container would see it."""
    scratch = Path(tempfile.mkdtemp(dir=sandbox, prefix="view-"))
    view, upper, work = scratch / "view", scratch / "upper", scratch / "work"
    for path in (view, upper, work):
        path.mkdir()
    mount_overlay(view, store.lowers(chain), upper, work)
    try:
        yield view
    finally:
        unmount(view)
        shutil.rmtree(scratch)


def _apply(store: LayerStore, sandbox: Path, parent: str | None, n: int, *members) -> LayerInfo:
    return store.apply(parent, _diff_id(n), write_tar(sandbox / f"layer{n}.tar", *members))


def _tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def _leftovers(store: LayerStore) -> list[str]:
    return [p.name for p in store.root.iterdir() if p.name.startswith(".")] + \
        [str(p) for p in mounts_below(store.root)]


def test_chain_id() -> None:
    a, b, c = _diff_id(1), _diff_id(2), _diff_id(3)
    assert chain_id(None, a) == a
    ab = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_id(a, b) == ab
    assert chain_id(ab, c) == "sha256:" + hashlib.sha256(f"{ab} {c}".encode()).hexdigest()
    assert chain_id(a, b) != chain_id(b, a)


def test_apply_stores_a_layer_once(store: LayerStore, sandbox: Path) -> None:
    base = _apply(store, sandbox, None, 1, reg("etc/hostname", b"kran\n"), reg("bin/sh", b"#!", mode=0o755))
    assert base == LayerInfo(chain_id=_diff_id(1), diff_id=_diff_id(1), parent=None, size=7)
    hexid = _diff_id(1).removeprefix("sha256:")
    assert json.loads((store.root / hexid / "layer.json").read_text())["size"] == 7
    assert store.diff_dir(base.chain_id) == store.root / hexid / "diff"
    assert (store.diff_dir(base.chain_id) / "etc/hostname").read_bytes() == b"kran\n"
    top = _apply(store, sandbox, base.chain_id, 2, reg("etc/motd", b"hi"))
    assert top.chain_id == chain_id(base.chain_id, _diff_id(2)) and top.parent == base.chain_id
    assert store.has(top.chain_id) and store.get(top.chain_id) == top
    assert store.list() == sorted([base, top], key=lambda layer: layer.chain_id)
    assert store.lowers(top.chain_id) == [store.diff_dir(top.chain_id), store.diff_dir(base.chain_id)]
    assert _tree(store.diff_dir(top.chain_id)) == {"etc", "etc/motd"}  # only what the layer changed
    # Idempotent: an existing chain is returned as is, without reading the tar again.
    assert store.apply(base.chain_id, _diff_id(2), sandbox / "no-such.tar") == top
    assert _leftovers(store) == []


def test_lookups_and_bad_ids(store: LayerStore, sandbox: Path) -> None:
    with pytest.raises(errors.NotFound, match="layer sha256:0+5 not found"):
        store.get(_diff_id(5))
    with pytest.raises(errors.NotFound):
        store.lowers(_diff_id(5))
    with pytest.raises(errors.NotFound, match="parent layer"):
        _apply(store, sandbox, _diff_id(5), 6, reg("x"))
    with pytest.raises(errors.InvalidArgument, match="invalid diff id"):
        store.apply(None, "sha256:../../etc", sandbox / "x.tar")
    with pytest.raises(errors.InvalidArgument, match="invalid chain id"):
        store.has("../x")
    assert not store.has(_diff_id(5)) and store.list() == []


def test_whiteouts_and_opaque_dirs_across_layers(store: LayerStore, sandbox: Path) -> None:
    l0 = _apply(store, sandbox, None, 1,
                reg("etc/a"), reg("etc/b"), reg("dir/x"), reg("dir/sub/y"), reg("dir/sub/keep"),
                reg("tree/deep/file"), reg("keep"))
    l1 = _apply(store, sandbox, l0.chain_id, 2,
                whiteout("etc/a"), whiteout("tree"),
                directory("dir/"), reg("dir/.wh..wh..opq", b""), reg("dir/new"),
                directory("dir/sub/"), reg("dir/sub/keep", b"rewritten"))
    l2 = _apply(store, sandbox, l1.chain_id, 3,
                reg("etc/a", b"back"), reg("tree/again"), whiteout("etc/b"), whiteout("dir/new"))
    upper1 = store.diff_dir(l1.chain_id)
    assert not [p for p in upper1.rglob(".wh.*")]  # the markers are never created
    etc_a = os.lstat(upper1 / "etc/a")  # the kernel's overlay whiteout instead
    assert stat.S_ISCHR(etc_a.st_mode) and etc_a.st_rdev == 0
    with merged(store, l1.chain_id, sandbox) as view:
        assert _tree(view) == {"etc", "etc/b", "dir", "dir/new", "dir/sub", "dir/sub/keep", "keep"}
        assert (view / "dir/sub/keep").read_bytes() == b"rewritten"
    with merged(store, l2.chain_id, sandbox) as view:
        assert _tree(view) == {"etc", "etc/a", "dir", "dir/sub", "dir/sub/keep", "tree", "tree/again", "keep"}
        assert (view / "etc/a").read_bytes() == b"back"
    l3 = _apply(store, sandbox, l2.chain_id, 4, reg(".wh..wh..opq", b""), reg("only"),
                reg(".wh..wh.plnk/123.456", b"aufs bookkeeping, skipped"))
    with merged(store, l3.chain_id, sandbox) as view:
        assert _tree(view) == {"only"}
    assert _tree(store.diff_dir(l0.chain_id)) >= {"etc/a", "dir/x", "tree/deep/file"}  # lower layers untouched


def test_merged_usr_symlink_is_followed_inside_the_root(store: LayerStore, sandbox: Path) -> None:
    l0 = _apply(store, sandbox, None, 1, directory("usr/lib/"), symlink("lib", "usr/lib"), symlink("abs", "/usr"))
    l1 = _apply(store, sandbox, l0.chain_id, 2, reg("lib/x", b"x"), reg("abs/bin/tool", b"t"))
    upper = store.diff_dir(l1.chain_id)
    assert (upper / "usr/lib/x").read_bytes() == b"x"
    assert (upper / "usr/bin/tool").read_bytes() == b"t"
    assert not (upper / "lib").exists() and not (upper / "abs").exists()
    with merged(store, l1.chain_id, sandbox) as view:
        assert os.readlink(view / "lib") == "usr/lib"
        assert (view / "lib/x").read_bytes() == b"x"


def test_writes_through_a_lower_symlink_stay_inside(store: LayerStore, sandbox: Path) -> None:
    host = sandbox / "host"
    host.mkdir()
    (host / "victim").write_text("keep me")
    passwd = Path("/etc/passwd").read_bytes()
    l0 = _apply(store, sandbox, None, 1, symlink("out", str(host)), symlink("etc", "/"), directory(str(host)[1:]))
    l1 = _apply(store, sandbox, l0.chain_id, 2, reg("out/.wh..wh..opq", b""), reg("out/pwned"),
                whiteout("out/victim"), reg("etc/passwd", b"x"), hardlink("link", "etc/passwd"))
    assert sorted(p.name for p in host.iterdir()) == ["victim"]
    assert (host / "victim").read_text() == "keep me"
    assert Path("/etc/passwd").read_bytes() == passwd
    upper = store.diff_dir(l1.chain_id)
    assert (upper / str(host)[1:] / "pwned").exists() and (upper / "passwd").read_bytes() == b"x"
    assert os.stat(upper / "link").st_ino == os.stat(upper / "passwd").st_ino


@pytest.mark.parametrize("members, message", [
    ([reg("ok"), reg("../escape")], "invalid layer: ../escape: path contains '..'"),
    ([symlink("evil", "../../..")], "invalid layer: evil: symlink target '../../..' leaves the root"),
    ([hardlink("h", "../../etc/passwd")], "invalid layer: h: hard link target '../../etc/passwd': path contains '..'"),
    ([reg("dev/x"), reg("out/.wh.victim", b""), hardlink("h", "out/victim")],
     "invalid layer: h: hard link target 'out/victim' does not exist"),
])
@pytest.mark.parametrize("on_top", [False, True], ids=["base", "over-parent"])
def test_refused_layer_leaves_nothing_behind(store: LayerStore, sandbox: Path, members, message: str,
                                             on_top: bool) -> None:
    host = sandbox / "host"
    host.mkdir()
    (host / "victim").write_text("keep me")
    parent = _apply(store, sandbox, None, 1, symlink("out", str(host))).chain_id if on_top else None
    before = store.list()
    with pytest.raises(errors.InvalidArgument) as exc:
        _apply(store, sandbox, parent, 2, *members)
    assert str(exc.value) == message
    assert store.list() == before and not store.has(chain_id(parent, _diff_id(2)))
    assert _leftovers(store) == []
    assert {p.name for p in sandbox.iterdir()} - {"layer1.tar"} == {"host", "layer2.tar", "layers"}
    assert (host / "victim").read_text() == "keep me"


def test_recovery_removes_unfinished_work(store: LayerStore, sandbox: Path) -> None:
    l0 = _apply(store, sandbox, None, 1, reg("a"))
    l1 = _apply(store, sandbox, l0.chain_id, 2, reg("b"))
    (store.root / ".tmp-crashed/layer/diff").mkdir(parents=True)
    (store.root / ".tmp-crashed/layer/diff/half").write_text("x")
    stale = store.root / ".mnt-crashed"
    stale.mkdir()
    mount_overlay(stale, store.lowers(l1.chain_id))
    busy = os.open(stale / "a", os.O_RDONLY)  # an open file must not keep the mount alive
    try:
        reopened = LayerStore(store.root)
    finally:
        os.close(busy)
    assert _leftovers(reopened) == []
    assert reopened.list() == sorted([l0, l1], key=lambda layer: layer.chain_id)


def test_remove_deletes_only_that_layer(store: LayerStore, sandbox: Path) -> None:
    l0 = _apply(store, sandbox, None, 1, reg("a"))
    l1 = _apply(store, sandbox, l0.chain_id, 2, reg("b"))
    store.remove(l1.chain_id)
    assert store.list() == [l0] and not store.has(l1.chain_id)
    assert _leftovers(store) == []
    with pytest.raises(errors.NotFound):
        store.remove(l1.chain_id)


def test_deep_chains_exceed_the_mount_option_page(sandbox: Path) -> None:
    # 64-character directory names make each lowerdir path long enough that 40
    # layers would not fit in mount(2)'s one-page option string.
    store = LayerStore(sandbox / ("d" * 64) / ("e" * 64) / "layers")
    parent = None
    for n in range(1, 41):
        parent = _apply(store, sandbox, parent, n, reg(f"f{n}", str(n).encode()), whiteout(f"f{n - 1}")).chain_id
    assert sum(len(str(p)) + 1 for p in store.lowers(parent)) > 4096
    with merged(store, parent, sandbox) as view:
        assert _tree(view) == {"f40"}


def test_hardlinks_and_rewrites_over_lower_files(store: LayerStore, sandbox: Path) -> None:
    l0 = _apply(store, sandbox, None, 1, reg("bin/busybox", b"bb", mode=0o755), reg("etc/conf", b"old"),
                directory("var/", mode=0o755))
    l1 = _apply(store, sandbox, l0.chain_id, 2, hardlink("bin/sh", "bin/busybox"),
                reg("etc/conf", b"new"), whiteout("etc/conf"),  # a whiteout never hides its own layer
                directory("var/", mode=0o700, mtime=1_700_000_000))
    upper = store.diff_dir(l1.chain_id)
    assert os.stat(upper / "bin/sh").st_ino == os.stat(upper / "bin/busybox").st_ino
    assert (upper / "etc/conf").read_bytes() == b"new"
    var = os.stat(upper / "var")
    assert (stat.S_IMODE(var.st_mode), var.st_mtime) == (0o700, 1_700_000_000)
    assert (store.diff_dir(l0.chain_id) / "etc/conf").read_bytes() == b"old"
    assert l1.size == 3
