"""Extraction of single layers into a plain directory, hostile archives included."""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from pathlib import Path

import pytest

from agent.images.extract import extract_layer
from tests.unit.agent.images.hostile import MTIME, device, directory, fifo, hardlink, reg, symlink, whiteout, write_tar
from kran import errors


@pytest.fixture
def root(sandbox: Path) -> Path:
    path = sandbox / "root"
    path.mkdir()
    return path


def _extract(sandbox: Path, root: Path, *members) -> int:
    return extract_layer(write_tar(sandbox / "layer.tar", *members), root)


def _tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def _digest(path: str) -> tuple[str, int]:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_nlink


def test_files_dirs_modes_owners_and_mtimes(sandbox: Path, root: Path) -> None:
    size = _extract(
        sandbox, root,
        directory("./", mode=0o700),
        directory("bin/", mode=0o755, mtime=MTIME + 5),
        reg("bin/su", b"#!su", mode=0o4755),
        reg("bin/wall", b"wall!", mode=0o2755, uid=0, gid=5),
        directory("tmp/", mode=0o1777),
        directory("home/user/", mode=0o750, uid=1000, gid=1000, mtime=MTIME + 7),
        reg("home/user/notes", b"hello", mode=0o600, uid=1000, gid=1001, mtime=MTIME + 9),
    )
    assert size == len(b"#!su") + len(b"wall!") + len(b"hello")
    assert stat.S_IMODE(os.stat(root / "bin/su").st_mode) == 0o4755
    wall = os.stat(root / "bin/wall")
    assert (stat.S_IMODE(wall.st_mode), wall.st_gid) == (0o2755, 5)
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777
    notes = os.stat(root / "home/user/notes")
    assert (notes.st_uid, notes.st_gid, stat.S_IMODE(notes.st_mode)) == (1000, 1001, 0o600)
    assert notes.st_mtime == MTIME + 9
    assert (root / "home/user/notes").read_bytes() == b"hello"
    home = os.stat(root / "home/user")
    assert (home.st_uid, stat.S_IMODE(home.st_mode)) == (1000, 0o750)
    # Directory times are set after their children were written.
    assert home.st_mtime == MTIME + 7
    assert os.stat(root / "bin").st_mtime == MTIME + 5
    # "./" describes the layer root, which belongs to the store.
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o755


def test_symlinks_are_kept_as_given(sandbox: Path, root: Path) -> None:
    _extract(
        sandbox, root,
        reg("usr/share/zoneinfo/UTC", b"TZif"),
        symlink("etc/localtime", "/usr/share/zoneinfo/UTC", uid=7, gid=8),
        symlink("usr/lib/sub/up", "../../share"),
        symlink("dangling", "nowhere/at/all"),
    )
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/UTC"
    assert os.readlink(root / "usr/lib/sub/up") == "../../share"
    assert os.readlink(root / "dangling") == "nowhere/at/all"
    link = os.lstat(root / "etc/localtime")
    assert (link.st_uid, link.st_gid, link.st_mtime) == (7, 8, MTIME)


def test_hardlinks_fifos_and_missing_parents(sandbox: Path, root: Path) -> None:
    size = _extract(
        sandbox, root,
        reg("a/b/c/file", b"12345", mode=0o640),
        hardlink("a/link", "a/b/c/file"),
        hardlink("./a/link2", "./a/link"),
        fifo("run/pipe", mode=0o620),
    )
    assert size == 5  # a hard link adds no content
    ino = os.stat(root / "a/b/c/file").st_ino
    assert os.stat(root / "a/link").st_ino == ino == os.stat(root / "a/link2").st_ino
    assert os.stat(root / "a/link").st_nlink == 3
    pipe = os.stat(root / "run/pipe")
    assert stat.S_ISFIFO(pipe.st_mode) and stat.S_IMODE(pipe.st_mode) == 0o620
    assert stat.S_IMODE(os.stat(root / "a/b").st_mode) == 0o755


def test_existing_entries_are_replaced_or_updated(sandbox: Path, root: Path) -> None:
    _extract(
        sandbox, root,
        reg("thing", b"file"),
        directory("thing/", mode=0o711),  # file -> directory
        reg("thing/child", b"c"),
        directory("thing/", mode=0o755),  # directory over directory: attributes only
        directory("gone/"),
        reg("gone/x"),
        reg("gone", b"now a file"),  # directory -> file
        reg("dup", b"first"),
        reg("dup", b"second"),
        symlink("sym", "a"),
        reg("sym", b"not a link"),  # symlink -> file, the symlink is not followed
    )
    assert (root / "thing/child").read_bytes() == b"c"
    assert stat.S_IMODE(os.stat(root / "thing").st_mode) == 0o755
    assert (root / "gone").read_bytes() == b"now a file"
    assert (root / "dup").read_bytes() == b"second"
    assert not (root / "sym").is_symlink() and not (root / "a").exists()


def test_xattrs_and_pax_global_headers(sandbox: Path, root: Path) -> None:
    tar = write_tar(sandbox / "layer.tar", reg("f", xattrs={"user.kran": "yes"}),
                    global_headers={"comment": "a global header"})
    extract_layer(tar, root)
    assert os.getxattr(root / "f", "user.kran") == b"yes"
    assert _tree(root) == {"f"}


def test_whiteouts_do_not_hide_their_own_layer(sandbox: Path, root: Path) -> None:
    _extract(sandbox, root, reg("d/kept"), whiteout("d/kept"), directory("o/"), reg("o/mine"),
             reg("o/.wh..wh..opq", b""), whiteout("d/absent"), whiteout("nodir/x"))
    assert _tree(root) == {"d", "d/kept", "o", "o/mine"}  # and no marker files


def test_large_file_is_streamed_intact(sandbox: Path, root: Path) -> None:
    data = os.urandom(3 << 20)
    assert _extract(sandbox, root, reg("big", data)) == len(data)
    assert (root / "big").read_bytes() == data


@pytest.mark.parametrize("members, name, reason", [
    ([reg("../escape")], "../escape", "'..'"),
    ([reg("/abs")], "/abs", "absolute path"),
    ([reg("a/../../x")], "a/../../x", "'..'"),
    ([directory("a/"), symlink("a/evil", "../../..")], "a/evil", "leaves the root"),
    ([symlink("evil", "../x")], "evil", "leaves the root"),
    ([hardlink("h", "/etc/passwd")], "h", "absolute path"),
    ([hardlink("h", "../../etc/passwd")], "h", "'..'"),
    ([hardlink("h", "missing")], "h", "does not exist"),
    ([directory("d/"), hardlink("h", "d")], "h", "is a directory"),
    ([device("null")], "null", "device nodes are not allowed"),
    ([device("sda", tarfile.BLKTYPE)], "sda", "device nodes are not allowed"),
    ([reg("../.wh.x", b"")], "../.wh.x", "'..'"),
    ([reg("d/.wh.", b"")], "d/.wh.", "invalid whiteout name"),
    ([reg("d/.wh..", b"")], "d/.wh..", "invalid whiteout name"),
    ([reg("f", xattrs={"trusted.overlay.opaque": "y"})], "f", "reserved for overlayfs"),
    ([reg("n" * 300)], "n" * 300, "File name too long"),
    ([reg("f"), reg("f/g")], "f/g", "Not a directory"),
], ids=["dotdot", "absolute", "inner-dotdot", "symlink-escape", "symlink-escape-top", "hardlink-absolute",
        "hardlink-dotdot", "hardlink-missing", "hardlink-dir", "char-device", "block-device",
        "whiteout-dotdot", "bare-whiteout", "whiteout-dot", "overlay-xattr", "overlong-name", "file-as-dir"])
def test_hostile_members_are_refused(sandbox: Path, root: Path, members, name: str, reason: str) -> None:
    with pytest.raises(errors.InvalidArgument) as exc:
        _extract(sandbox, root, *members)
    assert str(exc.value).startswith(f"invalid layer: {name}: ")
    assert reason in str(exc.value)
    assert sorted(p.name for p in sandbox.iterdir()) == ["layer.tar", "root"]


def test_absolute_symlink_resolves_inside_the_root(sandbox: Path, root: Path) -> None:
    before = _digest("/etc/passwd")
    _extract(sandbox, root, symlink("etc", "/"), reg("etc/passwd", b"root::0:0::/:/bin/sh\n"),
             symlink("up", "/../../.."), reg("up/planted", b"x"))
    assert (root / "passwd").read_bytes() == b"root::0:0::/:/bin/sh\n"
    assert (root / "planted").exists()
    assert _digest("/etc/passwd") == before


def test_hardlinks_never_reach_host_files(sandbox: Path, root: Path) -> None:
    before = _digest("/etc/passwd")
    _extract(sandbox, root, symlink("s", "/etc/passwd"), hardlink("h", "s"))
    assert os.readlink(root / "h") == "/etc/passwd"  # a link to the symlink itself
    with pytest.raises(errors.InvalidArgument, match="does not exist"):
        _extract(sandbox, root, symlink("hostetc", "/etc"), hardlink("h2", "hostetc/passwd"))
    assert _digest("/etc/passwd") == before


def test_whiteout_through_a_symlink_spares_host_files(sandbox: Path, root: Path) -> None:
    host = sandbox / "host"
    host.mkdir()
    (host / "victim").write_text("keep me")
    _extract(sandbox, root, symlink("d", str(host)), whiteout("d/victim"))
    assert (host / "victim").read_text() == "keep me"
    # Inside the root the link dangles: writing through it is refused, not redirected to the host.
    with pytest.raises(errors.InvalidArgument, match="^invalid layer: d/new: parent 'd' is a dangling symlink"):
        _extract(sandbox, root, reg("d/new"))
    assert sorted(p.name for p in host.iterdir()) == ["victim"]


@pytest.mark.parametrize("content", [b"not a tar at all" * 100, b""])
def test_garbage_is_not_a_layer(sandbox: Path, root: Path, content: bytes) -> None:
    (sandbox / "layer.tar").write_bytes(content)
    with pytest.raises(errors.InvalidArgument, match="^invalid layer: "):
        extract_layer(sandbox / "layer.tar", root)


def test_truncated_tar_is_refused(sandbox: Path, root: Path) -> None:
    tar = write_tar(sandbox / "layer.tar", reg("big", os.urandom(100_000)))
    tar.write_bytes(tar.read_bytes()[:50_000])
    with pytest.raises(errors.InvalidArgument, match="^invalid layer: "):
        extract_layer(tar, root)
