"""Writing a directory tree into a tar without ever following a symlink out of it.

Used for docker cp out of a container and for a container's layer at
commit. The tree may belong to a running container, which can swap a
directory for a symlink while we walk: every entry is reached through its
parent directory's fd with O_NOFOLLOW, so no path is ever resolved by name
on the host. Entries carry mode, owner, mtime and (as moby's archive
package) only the security.capability xattr.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Collection
from typing import BinaryIO

from agent.images.extract import OPAQUE_WHITEOUT, WHITEOUT_PREFIX

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KEPT_XATTRS = ("security.capability",)
_OPAQUE_XATTR = "trusted.overlay.opaque"
# An entry removed or replaced (by a symlink: ELOOP under O_NOFOLLOW) while a running container changes it.
_GONE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP})


def is_whiteout(st: os.stat_result) -> bool:
    """Whether `st` is an overlay whiteout: a character device 0:0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(dir_fd: int) -> bool:
    """Whether the directory open as `dir_fd` is an overlay opaque directory."""
    try:
        return os.getxattr(dir_fd, _OPAQUE_XATTR) == b"y"
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.EOPNOTSUPP):
            return False
        raise


class _Exact:
    """Exactly `size` bytes of an open file: a file that shrank meanwhile is padded with zeros."""

    def __init__(self, fd: int, size: int):
        self.fd = fd
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        chunks, got = [], 0
        while got < n:
            data = os.read(self.fd, n - got)
            if not data:
                chunks.append(bytes(n - got))
                break
            chunks.append(data)
            got += len(data)
        self.left -= n
        return b"".join(chunks)


class TreeWriter:
    """Adds trees to `tar`, walking them through directory fds.

    `overlay`: the tree is an overlayfs upper dir; whiteouts become `.wh.`
    entries and opaque directories get `.wh..wh..opq`. `devices`: write
    device nodes (a layer cannot hold them: the image store refuses them).
    Paths (relative to the tree's root, no leading "/") in `exclude` are
    left out, and a directory in `lazy` is written only when something
    below it is.
    """

    def __init__(self, tar: tarfile.TarFile, *, overlay: bool = False, devices: bool = True,
                 exclude: Collection[str] = (), lazy: Collection[str] = ()) -> None:
        self.tar = tar
        self.overlay = overlay
        self.devices = devices
        self.exclude = frozenset(exclude)
        self.lazy = frozenset(lazy)
        self.links: dict[tuple[int, int], str] = {}
        self.pending: list[tarfile.TarInfo] = []  # lazy directories not written yet, outermost first
        self.count = 0

    def add_children(self, dir_fd: int) -> None:
        """Add what the directory open as `dir_fd` holds, named relative to it."""
        for name in sorted(os.listdir(dir_fd)):
            self.add(dir_fd, name, name)

    def add(self, dir_fd: int, name: str, arcname: str) -> None:
        """Add the entry `name` of the directory `dir_fd` (recursively) as `arcname`."""
        if arcname in self.exclude:
            return
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return  # removed while we walk (a running container)
        if self.overlay and is_whiteout(st):
            parent, _, base = arcname.rpartition("/")
            self._emit(self._info(f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base,
                                  tarfile.REGTYPE, st, mode=0o600))
            return
        if stat.S_ISDIR(st.st_mode):
            self._directory(dir_fd, name, arcname, st)
        elif stat.S_ISREG(st.st_mode):
            self._regular(dir_fd, name, arcname, st)
        elif stat.S_ISLNK(st.st_mode):
            info = self._info(arcname, tarfile.SYMTYPE, st)
            info.linkname = os.readlink(name, dir_fd=dir_fd)
            self._emit(info)
        elif stat.S_ISFIFO(st.st_mode):
            self._emit(self._info(arcname, tarfile.FIFOTYPE, st))
        elif (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) and self.devices:
            info = self._info(arcname, tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE, st)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self._emit(info)
        # Sockets (and devices in a layer) cannot travel in an archive; moby leaves sockets out too.

    def _directory(self, dir_fd: int, name: str, arcname: str, st: os.stat_result) -> None:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in _GONE:
                return
            raise
        try:
            info = self._info(arcname + "/", tarfile.DIRTYPE, os.fstat(fd))
            lazy = arcname in self.lazy
            if lazy:
                self.pending.append(info)
            else:
                self._emit(info)
            if self.overlay and is_opaque(fd):
                self._emit(self._info(f"{arcname}/{OPAQUE_WHITEOUT}", tarfile.REGTYPE, st, mode=0o600))
            for child in sorted(os.listdir(fd)):
                self.add(fd, child, f"{arcname}/{child}")
            if lazy and self.pending and self.pending[-1] is info:
                self.pending.pop()
        finally:
            os.close(fd)

    def _regular(self, dir_fd: int, name: str, arcname: str, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            info = self._info(arcname, tarfile.LNKTYPE, st)
            info.linkname = self.links[key]
            self._emit(info)
            return
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in _GONE:
                return
            raise
        try:
            current = os.fstat(fd)
            if not stat.S_ISREG(current.st_mode):
                return  # replaced by something else while we walk
            info = self._info(arcname, tarfile.REGTYPE, current)
            info.size = current.st_size
            for attr in _KEPT_XATTRS:
                try:
                    value = os.getxattr(fd, attr)
                except OSError:
                    continue
                info.pax_headers[f"SCHILY.xattr.{attr}"] = value.decode("utf-8", "surrogateescape")
            self._emit(info, _Exact(fd, current.st_size))
            if current.st_nlink > 1:
                self.links[key] = arcname
        finally:
            os.close(fd)

    def _info(self, arcname: str, kind: bytes, st: os.stat_result, mode: int | None = None) -> tarfile.TarInfo:
        info = tarfile.TarInfo(arcname)
        info.type = kind
        info.mode = stat.S_IMODE(st.st_mode) if mode is None else mode
        info.uid, info.gid = st.st_uid, st.st_gid
        info.mtime = int(st.st_mtime)
        return info

    def _emit(self, info: tarfile.TarInfo, data: _Exact | None = None) -> None:
        for parent in self.pending:
            self.tar.addfile(parent)
        self.pending.clear()
        self.tar.addfile(info, data)  # type: ignore[arg-type]  # tarfile only calls read()
        self.count += 1


def open_tar(out: BinaryIO) -> tarfile.TarFile:
    """A PAX tar writing to the stream `out` (no seeking needed)."""
    return tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
