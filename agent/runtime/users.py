"""Resolve Docker's --user forms against the image's /etc/passwd and /etc/group.

The OCI config holds numbers only, so names are resolved here, on the agent,
from the image's layers (the top layer that has the file wins), before
anything runs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.images.extract import open_in_root
from agent.runtime.spec import User
from kran import errors


def _entries(text: str, fields: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields:
            rows.append(parts)
    return rows


def resolve_user(user: str, passwd: str, group: str) -> User:
    """Resolve "", "name", "uid", "name:group" or "uid:gid" to a User.

    A numeric uid needs no passwd entry (gid 0 then, as Docker); a name that
    is not in passwd, or a group name not in group, is InvalidArgument.
    """
    name, _, group_part = user.partition(":")
    name = name or "0"
    passwd_rows = _entries(passwd, 7)
    entry = next((row for row in passwd_rows if row[0] == name), None)
    if entry is None and name.isdigit():
        entry = next((row for row in passwd_rows if row[2] == name), None)
    if entry is None and not name.isdigit():
        raise errors.InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
    if entry is not None:
        resolved = User(uid=int(entry[2]), gid=int(entry[3]), home=entry[5] or "/")
        username = entry[0]
    else:
        resolved = User(uid=int(name))
        username = None
    group_rows = _entries(group, 4)
    if group_part:
        if group_part.isdigit():
            resolved.gid = int(group_part)
        else:
            row = next((row for row in group_rows if row[0] == group_part), None)
            if row is None:
                raise errors.InvalidArgument(
                    f"unable to find group {group_part}: no matching entries in group file")
            resolved.gid = int(row[2])
    # The primary group comes first among the supplementary ones, as containerd sets them.
    extra = sorted({int(row[2]) for row in group_rows
                    if username is not None and username in row[3].split(",") and int(row[2]) != resolved.gid})
    resolved.additional_gids = [resolved.gid, *extra]
    return resolved


def read_image_file(lowers: list[Path], relpath: str) -> str:
    """A text file as the merged image shows it ("" when absent or deleted).

    Each layer is opened with its own directory as root, so a hostile
    symlink cannot lead outside the image.
    """
    for layer in lowers:
        try:
            root = os.open(layer, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            # O_PATH: a whiteout (0/0 device) or a FIFO must not be opened for reading.
            fd = open_in_root(root, relpath, os.O_PATH | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            continue
        finally:
            os.close(root)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return ""  # a whiteout (a higher layer deleted it) or something that is no file
            with open(f"/proc/self/fd/{fd}", "rb") as f:
                return f.read(1 << 20).decode(errors="replace")
        finally:
            os.close(fd)
    return ""


def resolve_in_image(user: str, lowers: list[Path]) -> User:
    """resolve_user against the image made of `lowers` (top first)."""
    return resolve_user(user, read_image_file(lowers, "etc/passwd"), read_image_file(lowers, "etc/group"))
