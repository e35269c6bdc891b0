"""docker cp out of and into a container, stopped (a temporary overlay) or running (/proc/<pid>/root)."""

from __future__ import annotations

import io
import os
import secrets
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.containers.copy import container_root, copy_from, copy_to
from agent.linux import mounts_below
from tests.unit.agent.images.hostile import directory, hardlink, reg, symlink, write_tar
from kran import errors

from .kit import ContainerFS, container_fs, image_layers

IMAGE_PASSWD = "root:x:0:0:root:/root:/bin/sh\n"


@pytest.fixture
def fs(sandbox: Path) -> ContainerFS:  # noqa: F811
    fs = container_fs(image_layers(sandbox), sandbox)
    with fs.mounted() as root:
        os.symlink("/etc", root / "hostlink")
        os.symlink("../../../../..", root / "up")  # a container may make any link it likes
        (root / "bin/cat").unlink()
        (root / "tmp").mkdir()
    return fs


def _read(fs: ContainerFS, path: str, pid: int | None = None) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    out = io.BytesIO()
    with container_root(pid, fs.lowers, fs.upper, fs.work, fs.dir, writable=False) as root_fd:
        copy_from(root_fd, path, "ctr", out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        return {m.name: (m, tar.extractfile(m).read() if m.isreg() else b"") for m in tar.getmembers()}


def _write(fs: ContainerFS, directory_: str, tar: bytes, pid: int | None = None, **options) -> None:
    with container_root(pid, fs.lowers, fs.upper, fs.work, fs.dir, writable=True) as root_fd:
        copy_to(root_fd, directory_, io.BytesIO(tar), "ctr", **options)


def _tar(sandbox: Path, *members) -> bytes:  # noqa: F811
    return write_tar(sandbox / f"in-{secrets.token_hex(3)}.tar", *members).read_bytes()


def test_copy_a_file_a_directory_and_contents(fs: ContainerFS) -> None:
    (info, data), = _read(fs, "/etc/passwd").values()
    assert info.name == "passwd" and data.decode() == IMAGE_PASSWD
    assert set(_read(fs, "/srv")) == {"srv", "srv/sub", "srv/sub/x"}
    assert set(_read(fs, "srv/.")) == {".", "./sub", "./sub/x"}
    assert set(_read(fs, "/opt")) == {"opt", "opt/c"}  # the image's opaque dir hides opt/a and opt/b
    assert not list(mounts_below(fs.dir)) and sorted(os.listdir(fs.dir)) == ["rootfs", "upper", "work"]


def test_symlinks_stay_inside_the_container(fs: ContainerFS) -> None:
    (link, _), = _read(fs, "/escape").values()
    assert link.issym() and link.linkname == "/"
    for path in ("/escape/etc/passwd", "/up/etc/passwd", "/hostlink/passwd", "/escape/../../etc/passwd"):
        (info, data), = _read(fs, path).values()
        assert data.decode() == IMAGE_PASSWD, path
    through = _read(fs, "/escape/")
    assert "escape/bin/busybox" in through and "escape/etc/passwd" in through


@pytest.mark.parametrize("path", ["/nope", "/bin/cat", "/etc/passwd/x", "/escape/nope/x"])
def test_missing_paths(fs: ContainerFS, path: str) -> None:
    with pytest.raises(errors.NotFound) as caught:
        _read(fs, path)
    assert str(caught.value) == f"Could not find the file {path} in container ctr"


def test_trailing_slash_wants_a_directory(fs: ContainerFS) -> None:
    with pytest.raises(errors.InvalidArgument, match="not a directory"):
        _read(fs, "/etc/passwd/")


def test_copy_into_a_stopped_container_persists(fs: ContainerFS, sandbox: Path) -> None:  # noqa: F811
    _write(fs, "/tmp", _tar(sandbox, directory("a"), reg("a/b.txt", b"b", mode=0o640, uid=7), reg("c", b"c")))
    assert (fs.upper / "tmp/a/b.txt").read_bytes() == b"b"
    assert (fs.upper / "tmp/a/b.txt").stat().st_uid == 7
    with fs.mounted() as root:
        assert (root / "tmp/c").read_bytes() == b"c"
    # Through a symlink of the container's: into its /etc, never the host's.
    name = f"kran-cp-{secrets.token_hex(4)}"
    _write(fs, "/hostlink", _tar(sandbox, reg(name, b"inside")))
    assert (fs.upper / "etc" / name).read_bytes() == b"inside"
    assert not os.path.lexists(f"/etc/{name}")
    # Whiteout names are plain files in a copy.
    _write(fs, "/data", _tar(sandbox, reg(".wh.keep", b"")))
    with fs.mounted() as root:
        assert sorted(os.listdir(root / "data")) == [".wh.keep", "gone", "keep"]


@pytest.mark.parametrize("members, reason", [
    ((reg("../evil", b"x"),), "'..'"),
    ((symlink("s", "../../../../../../tmp"),), "leaves the root"),
    ((hardlink("h", "../../etc/passwd"),), "'..'"),
    ((hardlink("h", "/etc/shadow"),), "absolute"),
])
def test_hostile_archives_are_refused(fs: ContainerFS, sandbox: Path, members, reason: str) -> None:  # noqa: F811
    with pytest.raises(errors.InvalidArgument, match=reason):
        _write(fs, "/tmp", _tar(sandbox, *members))
    assert not (sandbox / "evil").exists()


def test_absolute_links_in_an_archive_resolve_inside(fs: ContainerFS, sandbox: Path) -> None:  # noqa: F811
    name = f"kran-cp-{secrets.token_hex(4)}"
    _write(fs, "/tmp", _tar(sandbox, symlink("root", "/"), reg(f"root/{name}", b"inside")))
    assert (fs.upper / name).read_bytes() == b"inside"
    assert not os.path.lexists(f"/{name}")


def test_bad_targets(fs: ContainerFS, sandbox: Path) -> None:  # noqa: F811
    tar = _tar(sandbox, reg("x"))
    with pytest.raises(errors.NotFound, match="Could not find the file /nope in container ctr"):
        _write(fs, "/nope", tar)
    with pytest.raises(errors.InvalidArgument, match="extraction point is not a directory"):
        _write(fs, "/etc/passwd", tar)
    with pytest.raises(errors.InvalidArgument, match="cannot overwrite directory"):
        _write(fs, "/srv", _tar(sandbox, reg("sub")), no_overwrite_dir_non_dir=True)
    with pytest.raises(errors.InvalidArgument, match="not a tar archive"):
        _write(fs, "/tmp", b"")


@pytest.fixture
def running(fs: ContainerFS) -> Iterator[tuple[ContainerFS, int, Path]]:
    """A process chrooted in the mounted container root, as a running container's init."""
    with fs.mounted() as root:
        process = subprocess.Popen(["chroot", str(root), "/bin/busybox", "sleep", "1000"])
        try:
            deadline = time.monotonic() + 5
            while os.readlink(f"/proc/{process.pid}/root") != str(root):  # until chroot has run
                assert time.monotonic() < deadline
                time.sleep(0.01)
            yield fs, process.pid, root
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def test_a_running_container(running, sandbox: Path) -> None:  # noqa: F811
    fs, pid, root = running
    (info, data), = _read(fs, "/escape/etc/passwd", pid).values()
    assert data.decode() == IMAGE_PASSWD
    _write(fs, "/tmp", _tar(sandbox, reg("live", b"live")), pid)
    assert (root / "tmp/live").read_bytes() == b"live"
    assert (fs.upper / "tmp/live").read_bytes() == b"live"
    assert not list(mounts_below(fs.dir / "upper"))


def test_an_exited_process_is_refused(fs: ContainerFS) -> None:
    process = subprocess.Popen(["true"])
    process.wait()
    with pytest.raises(errors.FailedPrecondition, match="has exited"):
        _read(fs, "/etc/passwd", process.pid)
