"""What a container changed in its filesystem: docker diff's list, and the layer docker commit stores.

Both read the container's overlay upper dir (and, for the list, the image's
layer dirs below it), so they work whether or not the container runs.

The list follows what Docker shows with overlay2 (its "naive" diff, which
compares the container's root with the image's): A for an entry no layer
has, C for one that differs from the image's (for a directory: mode or
owner; for anything else also size or mtime), D for a deleted one (an
overlay whiteout, or a child of a lower directory hidden by an opaque
directory), and C for every directory something below it changed.

Docker keeps the mount points its runtime needs in an "init" layer between
the image and the container, so they never show in a diff nor land in a
committed image. Our runtime creates them in the upper dir when the image
lacks them; INIT_FILES are therefore left out, and INIT_DIRS count as
present and unchanged in the image: they show (as C) only when something
inside them changed, and a committed layer holds them only then.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from agent.images.tarwrite import TreeWriter, is_opaque, is_whiteout, open_tar

INIT_FILES = frozenset({"etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab", "dev/console",
                        ".dockerenv"})
INIT_DIRS = frozenset({"dev", "dev/pts", "dev/shm", "dev/mqueue", "proc", "sys", "etc"})

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# A directory removed or replaced while a running container changes its files.
_GONE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP})

Change = tuple[str, str]
"""("/etc/passwd", "C"): a path and its kind, A, C or D."""


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _differs(old: os.stat_result, new: os.stat_result) -> bool:
    """moby's statDifferent: size and mtime do not count for directories."""
    if (old.st_mode, old.st_uid, old.st_gid, old.st_rdev) != (new.st_mode, new.st_uid, new.st_gid, new.st_rdev):
        return True
    if stat.S_ISDIR(old.st_mode):
        return False
    return old.st_size != new.st_size or not _same_mtime(old.st_mtime_ns, new.st_mtime_ns)


def _same_mtime(a: int, b: int) -> bool:
    # Tar keeps whole seconds: a time with no fraction matches any time in the same second.
    sec_a, ns_a = divmod(a, 1_000_000_000)
    sec_b, ns_b = divmod(b, 1_000_000_000)
    return a == b or (sec_a == sec_b and (ns_a == 0 or ns_b == 0))


def _visible(lower_fds: list[int]) -> dict[str, os.stat_result]:
    """The entries of one directory as the image shows it, from its dirs in the layers (top first)."""
    seen: dict[str, os.stat_result | None] = {}
    for fd in lower_fds:
        for name in os.listdir(fd):
            if name not in seen:
                st = _lstat(name, fd)
                seen[name] = None if st is None or is_whiteout(st) else st
    return {name: st for name, st in seen.items() if st is not None}


def _child_dirs(lower_fds: list[int], name: str) -> list[int]:
    """Open `name` in each layer that contributes it as a directory, down to an opaque one."""
    found = []
    for fd in lower_fds:
        st = _lstat(name, fd)
        if st is None:
            continue
        if not stat.S_ISDIR(st.st_mode):
            break  # a file or whiteout hides whatever the layers below have
        child = os.open(name, _DIR_FLAGS, dir_fd=fd)
        found.append(child)
        if is_opaque(child):
            break
    return found


class _Walk:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    def directory(self, upper_fd: int, path: str, lower_fds: list[int], hidden: bool) -> bool:
        """Record the changes below one directory; True if there was any.

        `hidden`: the directory is opaque (or inside an opaque one), so every
        image entry it lacks is deleted.
        """
        below = _visible(lower_fds)
        names = sorted(os.listdir(upper_fd))
        changed = False
        if hidden:
            for name in sorted(set(below) - set(names)):
                if path + name not in INIT_FILES:
                    self.changes.append((f"/{path}{name}", "D"))
                    changed = True
        for name in names:
            rel = path + name
            if rel in INIT_FILES:
                continue
            st = _lstat(name, upper_fd)
            if st is None:
                continue
            old = below.get(name)
            if is_whiteout(st):
                if old is not None:
                    self.changes.append((f"/{rel}", "D"))
                    changed = True
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if is_dir and rel in INIT_DIRS:
                kind = None
            elif old is None:
                kind = "A"
            else:
                kind = "C" if _differs(old, st) else None
            if kind:
                self.changes.append((f"/{rel}", kind))
                changed = True
            if is_dir and self._descend(upper_fd, name, rel, lower_fds, old, kind == "A", hidden) and not kind:
                self.changes.append((f"/{rel}", "C"))
                changed = True
        return changed

    def _descend(self, upper_fd: int, name: str, rel: str, lower_fds: list[int],
                 old: os.stat_result | None, added: bool, hidden: bool) -> bool:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=upper_fd)
        except OSError as exc:
            if exc.errno in _GONE:
                return False
            raise
        compare_with = [] if added or old is None or not stat.S_ISDIR(old.st_mode) else _child_dirs(lower_fds, name)
        try:
            return self.directory(fd, rel + "/", compare_with, hidden or is_opaque(fd))
        finally:
            os.close(fd)
            for child in compare_with:
                os.close(child)


def changes(upper: Path, lowers: list[Path]) -> list[Change]:
    """The container's changes, sorted by path as docker diff prints them.

    `upper` is the container's overlay upper dir, `lowers` the image's layer
    dirs, top first.
    """
    walk = _Walk()
    upper_fd = os.open(upper, _DIR_FLAGS)
    lower_fds: list[int] = []
    try:
        for lower in lowers:
            lower_fds.append(os.open(lower, _DIR_FLAGS))
        walk.directory(upper_fd, "", lower_fds, False)
    finally:
        os.close(upper_fd)
        for fd in lower_fds:
            os.close(fd)
    return sorted(walk.changes)


def write_layer(upper: Path, out: BinaryIO) -> int:
    """Write the container's upper dir to `out` as an image layer tar; return its number of entries.

    Whiteouts become `.wh.<name>` entries and opaque directories
    `.wh..wh..opq`; the runtime's mount points are left out as Docker's init
    layer keeps them out; device nodes are left out (the image store refuses
    them). Metadata is kept: mode, owner, mtime, file capabilities, hard links.
    """
    fd = os.open(upper, _DIR_FLAGS)
    try:
        with open_tar(out) as tar:
            writer = TreeWriter(tar, overlay=True, devices=False, exclude=INIT_FILES, lazy=INIT_DIRS)
            writer.add_children(fd)
    finally:
        os.close(fd)
    return writer.count
