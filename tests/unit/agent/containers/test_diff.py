"""docker diff from a container's overlay upper dir over real image layers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from agent.containers.diff import changes

from .kit import container_fs, image_layers


@pytest.fixture
def lowers(sandbox: Path) -> list[Path]:  # noqa: F811
    return image_layers(sandbox)


def _runtime_mountpoints(root: Path) -> None:
    """What our runtime creates in the upper dir when the image lacks it."""
    for name in ("proc", "sys", "dev"):
        (root / name).mkdir(exist_ok=True)
    (root / "etc").mkdir(exist_ok=True)
    for name in ("hostname", "hosts", "resolv.conf"):
        (root / "etc" / name).write_text("")


def test_added_changed_and_deleted(sandbox: Path, lowers: list[Path]) -> None:  # noqa: F811
    fs = container_fs(lowers, sandbox)
    with fs.mounted() as root:
        _runtime_mountpoints(root)
        (root / "new").write_text("new")
        with open(root / "etc/passwd", "a") as f:
            f.write("daemon:x:1:1::/:/bin/false\n")
        (root / "etc/group").chmod(0o600)
        (root / "bin/cat").unlink()
        os.chown(root / "bin/busybox", 0, 0)  # copied up, yet the same as the image's
        (root / "newdir/sub").mkdir(parents=True)
        (root / "newdir/sub/file").write_text("f")
        shutil.rmtree(root / "data")
        shutil.rmtree(root / "srv/sub")
        (root / "srv/sub").mkdir()
        (root / "srv/sub/y").write_text("y")
        (root / "opt/c").unlink()
        running = changes(fs.upper, lowers)
    assert (fs.upper / "bin/busybox").exists()
    assert running == [
        ("/bin", "C"), ("/bin/cat", "D"), ("/data", "D"), ("/etc", "C"), ("/etc/group", "C"),
        ("/etc/passwd", "C"), ("/new", "A"), ("/newdir", "A"), ("/newdir/sub", "A"), ("/newdir/sub/file", "A"),
        ("/opt", "C"), ("/opt/c", "D"), ("/srv", "C"), ("/srv/sub", "C"), ("/srv/sub/x", "D"),
        ("/srv/sub/y", "A"),
    ]
    # Stopped: the same, from the directories alone.
    assert changes(fs.upper, lowers) == running


def test_runtime_mountpoints_are_not_changes(sandbox: Path, lowers: list[Path]) -> None:  # noqa: F811
    fs = container_fs(lowers, sandbox)
    with fs.mounted() as root:
        _runtime_mountpoints(root)
    assert changes(fs.upper, lowers) == []
    with fs.mounted() as root:
        (root / "dev/foo").write_text("")
    assert changes(fs.upper, lowers) == [("/dev", "C"), ("/dev/foo", "A")]


def test_an_image_without_etc(sandbox: Path, lowers: list[Path]) -> None:  # noqa: F811
    base_only = lowers[-1:]
    fs = container_fs(base_only, sandbox)
    with fs.mounted() as root:
        _runtime_mountpoints(root)
    assert changes(fs.upper, base_only) == []
    with fs.mounted() as root:
        (root / "etc/motd").write_text("hi")
    # As with Docker, whose init layer holds /etc: a change in it, not an addition.
    assert changes(fs.upper, base_only) == [("/etc", "C"), ("/etc/motd", "A")]


def test_replaced_types(sandbox: Path, lowers: list[Path]) -> None:  # noqa: F811
    fs = container_fs(lowers, sandbox)
    with fs.mounted() as root:
        (root / "etc/passwd").unlink()
        (root / "etc/passwd").mkdir()
        (root / "etc/passwd/inner").write_text("")
        shutil.rmtree(root / "srv")
        (root / "srv").write_text("now a file")
        (root / "escape").unlink()
        (root / "escape").mkdir()
    assert changes(fs.upper, lowers) == [
        ("/escape", "C"), ("/etc", "C"), ("/etc/passwd", "C"), ("/etc/passwd/inner", "A"), ("/srv", "C"),
    ]


def test_a_container_that_changed_nothing(sandbox: Path, lowers: list[Path]) -> None:  # noqa: F811
    fs = container_fs(lowers, sandbox)
    with fs.mounted() as root:
        assert sorted(os.listdir(root / "opt")) == ["c"]
    assert changes(fs.upper, lowers) == []
