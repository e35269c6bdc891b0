"""--user resolution against an image's /etc/passwd and /etc/group."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.runtime.users import read_image_file, resolve_in_image, resolve_user
from kran import errors

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n# c\n"
GROUP = "root:x:0:\nwheel:x:10:nobody,alice\nnogroup:x:65534:\n"


def test_forms() -> None:
    assert resolve_user("", PASSWD, GROUP).uid == 0
    nobody = resolve_user("nobody", PASSWD, GROUP)
    assert (nobody.uid, nobody.gid, nobody.additional_gids, nobody.home) == (65534, 65534, [65534, 10], "/nonexistent")
    assert resolve_user("65534", PASSWD, GROUP).home == "/nonexistent"
    anonymous = resolve_user("1234", PASSWD, GROUP)
    assert (anonymous.uid, anonymous.gid, anonymous.additional_gids, anonymous.home) == (1234, 0, [0], "/")
    assert resolve_user("nobody:wheel", PASSWD, GROUP).gid == 10
    assert resolve_user("1234:77", PASSWD, GROUP).gid == 77


def test_unknown_names_are_invalid() -> None:
    with pytest.raises(errors.InvalidArgument, match="unable to find user bob"):
        resolve_user("bob", PASSWD, GROUP)
    with pytest.raises(errors.InvalidArgument, match="unable to find group staff"):
        resolve_user("nobody:staff", PASSWD, GROUP)


def test_top_layer_wins_and_whiteouts_delete(tmp_path: Path) -> None:
    top, middle, bottom = (tmp_path / n for n in ("top", "middle", "bottom"))
    for layer in (top, middle, bottom):
        (layer / "etc").mkdir(parents=True)
    (bottom / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\nold:x:5:5::/old:/bin/sh\n")
    (middle / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\nnew:x:6:6::/new:/bin/sh\n")
    assert resolve_in_image("new", [top, middle, bottom]).uid == 6
    with pytest.raises(errors.InvalidArgument):
        resolve_in_image("old", [top, middle, bottom])
    os.mknod(top / "etc" / "passwd", 0o600 | 0o020000, 0)  # an overlay whiteout
    assert read_image_file([top, middle, bottom], "etc/passwd") == ""


def test_symlinks_stay_in_the_layer(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True)
    (layer / "etc" / "passwd").symlink_to("/etc/shadow")
    assert read_image_file([layer], "etc/passwd") == ""
