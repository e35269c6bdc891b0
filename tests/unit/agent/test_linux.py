"""Overlay mounts through both kernel interfaces give the same view."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from agent import linux
from agent.linux import MAX_MOUNT_DATA, mount_overlay, mount_overlay_classic, unmount


def _layers(base: Path) -> list[Path]:
    """Two lower dirs, top first: the top one shadows a file of the bottom one."""
    bottom, top = base / "bottom", base / "top"
    for layer, files in ((bottom, {"a": "bottom", "b": "bottom"}), (top, {"a": "top"})):
        layer.mkdir()
        for name, text in files.items():
            (layer / name).write_text(text)
    return [top, bottom]


@pytest.mark.parametrize("mount", [mount_overlay, mount_overlay_classic])
def test_both_interfaces_merge_the_layers(sandbox: Path, mount) -> None:
    lowers = _layers(sandbox)
    view, upper, work = sandbox / "view", sandbox / "upper", sandbox / "work"
    for path in (view, upper, work):
        path.mkdir()
    mount(view, lowers)  # read-only: two lowers, no upper
    try:
        assert {p.name: p.read_text() for p in view.iterdir()} == {"a": "top", "b": "bottom"}
        with pytest.raises(OSError):
            (view / "c").write_text("x")
    finally:
        unmount(view)
    mount(view, lowers, upper, work)
    try:
        (view / "c").write_text("new")
        (view / "b").unlink()
    finally:
        unmount(view)
    assert (upper / "c").read_text() == "new" and (upper / "b").is_char_device()


def test_classic_refuses_more_layers_than_a_page_holds(sandbox: Path) -> None:
    lowers = [sandbox / f"layer-with-a-rather-long-name-{n:04d}" for n in range(MAX_MOUNT_DATA // 40)]
    with pytest.raises(OSError) as refused:
        mount_overlay_classic(sandbox, lowers)
    assert refused.value.errno == errno.E2BIG and "Linux 6.8 lifts the limit" in str(refused.value)


def test_a_kernel_without_lowerdir_plus_gets_the_classic_mount(sandbox: Path, monkeypatch) -> None:
    def before_linux_6_8(*args: object) -> None:
        raise linux._NoLowerdirPlus()  # what fsconfig's EINVAL on "lowerdir+" becomes
    monkeypatch.setattr(linux, "_mount_overlay_fs", before_linux_6_8)
    lowers = _layers(sandbox)
    view = sandbox / "view"
    view.mkdir()
    mount_overlay(view, lowers)
    try:
        assert (view / "a").read_text() == "top"
    finally:
        unmount(view)
