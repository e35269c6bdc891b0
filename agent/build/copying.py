"""COPY and ADD into a step's root filesystem, with Docker's rules for where things land.

The target is the step's root (an overlay of the stage's layers with a
fresh upper dir, open as a directory fd). Each source goes there as a tar
stream unpacked by the image store's extractor, so every path resolves
inside the root and nothing lands outside it. As Docker does:

- a directory's contents (not the directory itself) are copied into the
  destination, which is created (mode 0755) if missing;
- a file goes to the destination itself, or into it when the destination
  ends with "/" or is an existing directory;
- several sources need a destination ending with "/";
- everything copied belongs to 0:0 unless --chown says otherwise
  (a user alone means the same number as group), keeps its permission
  bits unless --chmod says otherwise, and keeps its modification time;
- ADD unpacks a local tar archive (plain, gzip, bzip2, xz or zstd) into
  the destination directory, keeping the archive's owners.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.build.sources import Root, Source
from agent.images.content import decompressed
from agent.images.extract import extract_archive
from agent.images.tarwrite import TreeWriter, open_tar
from agent.linux import open_in_root
from agent.runtime.users import read_image_file, resolve_user
from kran import errors


@dataclass(frozen=True)
class Ownership:
    """What copied entries get: owner and, with --chmod, permission bits."""

    uid: int = 0
    gid: int = 0
    mode: int | None = None


class _Owned:
    """A tar writer's stand-in that gives every entry the copy's owner and mode."""

    def __init__(self, tar: tarfile.TarFile, ownership: Ownership) -> None:
        self._tar = tar
        self._ownership = ownership

    def addfile(self, info: tarfile.TarInfo, fileobj: Any = None) -> None:
        info.uid, info.gid = self._ownership.uid, self._ownership.gid
        info.uname = info.gname = ""
        if self._ownership.mode is not None and not info.issym():
            info.mode = self._ownership.mode
        self._tar.addfile(info, fileobj)


def ownership(chown: str, chmod: str, lowers: list[Path]) -> Ownership:
    """--chown USER[:GROUP] (names from /etc/passwd and /etc/group of the layers `lowers`) and --chmod OCTAL."""
    mode = int(chmod, 8) if chmod else None
    if not chown:
        return Ownership(mode=mode)
    user, sep, group = chown.partition(":")
    passwd, groups = read_image_file(lowers, "etc/passwd"), read_image_file(lowers, "etc/group")
    try:
        uid = resolve_user(user, passwd, "").uid if user else 0
        gid = resolve_user(f"0:{group}", passwd, groups).gid if sep and group else uid
    except errors.InvalidArgument as exc:
        raise errors.InvalidArgument(
            f"unable to convert uid/gid chown string to host mapping: {exc}") from None
    return Ownership(uid, gid, mode)


def _existing_dir(root_fd: int, path: str) -> bool:
    try:
        fd = open_in_root(root_fd, path, os.O_PATH)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        return stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def is_archive(source_root: Root, source: Source) -> bool:
    """Whether a file is a tar archive, maybe compressed (what ADD unpacks)."""
    dir_fd, name = source_root.open_parent(source)
    try:
        # O_NONBLOCK: a FIFO must not hang the build; only a regular file can be an archive.
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    with open(fd, "rb") as raw:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            with decompressed(raw) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                return tar.next() is not None
        except (tarfile.TarError, OSError, EOFError, errors.KranError, ValueError):
            return False


def copy_into(target_fd: int, dest: str, source_root: Root, sources: list[Source], owner: Ownership,
              scratch: Path, unpack: bool = False) -> None:
    """Copy `sources` (from `source_root`) to `dest` (absolute) in the root open as `target_fd`."""
    if len(sources) > 1 and not dest.endswith("/"):
        raise errors.InvalidArgument("When using COPY with more than one source file, "
                                     "the destination must be a directory and end with a /")
    for source in sources:
        if unpack and not source.is_dir and is_archive(source_root, source):
            _unpack(target_fd, dest, source_root, source)
        elif source.is_dir:
            _copy_dir(target_fd, dest, source_root, source, owner, scratch)
        else:
            target = dest
            if dest.endswith("/") or _existing_dir(target_fd, dest):
                target = posixpath.join(dest, source.name)
            base, name = posixpath.split(posixpath.normpath(target))
            _through_tar(target_fd, base, scratch, lambda tar: _add(tar, source_root, source, name, owner))


def _add(tar: tarfile.TarFile, source_root: Root, source: Source, arcname: str, owner: Ownership) -> None:
    dir_fd, name = source_root.open_parent(source)
    try:
        TreeWriter(_Owned(tar, owner)).add(dir_fd, name, arcname)  # type: ignore[arg-type]
    finally:
        os.close(dir_fd)


def _copy_dir(target_fd: int, dest: str, source_root: Root, source: Source, owner: Ownership,
              scratch: Path) -> None:
    clean = posixpath.normpath(dest)
    if _existing_dir(target_fd, clean):
        base, prefix = clean, ""
    else:
        base, made = posixpath.split(clean)
        prefix = made + "/"

    def write(tar: tarfile.TarFile) -> None:
        if prefix:
            made_dir = tarfile.TarInfo(prefix)
            made_dir.type, made_dir.mode, made_dir.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            made_dir.uid, made_dir.gid = owner.uid, owner.gid
            tar.addfile(made_dir)
        dir_fd, name = source_root.open_parent(source)
        try:
            fd = open_in_root(dir_fd, name) if name != "." else os.dup(dir_fd)
        finally:
            os.close(dir_fd)
        try:
            writer = TreeWriter(_Owned(tar, owner))  # type: ignore[arg-type]
            for child in sorted(os.listdir(fd)):
                writer.add(fd, child, prefix + child)
        finally:
            os.close(fd)

    _through_tar(target_fd, base, scratch, write)


def _unpack(target_fd: int, dest: str, source_root: Root, source: Source) -> None:
    dir_fd, name = source_root.open_parent(source)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    with open(fd, "rb") as raw, decompressed(raw) as stream:
        make_dirs(target_fd, dest)
        extract_archive(stream, target_fd, posixpath.normpath(dest))


def make_dirs(target_fd: int, path: str) -> None:
    """mkdir -p inside the root open as `target_fd` (missing components 0755, root's): WORKDIR's."""
    done = ""
    for part in [p for p in posixpath.normpath(path).split("/") if p]:
        done = f"{done}/{part}"
        if not _existing_dir(target_fd, done):
            parent = open_in_root(target_fd, posixpath.dirname(done) or "/")
            try:
                os.mkdir(part, 0o755, dir_fd=parent)
            finally:
                os.close(parent)


def _through_tar(target_fd: int, base: str, scratch: Path, write: Any) -> None:
    """Write a tar with write(tar) to a scratch file, then unpack it into `base` of the root."""
    path = scratch / "copy.tar"
    with open(path, "w+b") as out:
        with open_tar(out) as tar:
            write(tar)
        out.seek(0)
        extract_archive(out, target_fd, base)
    path.unlink()
