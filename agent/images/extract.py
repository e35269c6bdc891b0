"""Unpack one layer tar into a directory without ever leaving it.

Layer tars are attacker-controlled and the agent runs as root, so nothing here
trusts a path: every member's parent directory is opened with
openat2(RESOLVE_IN_ROOT) relative to the root's fd, which makes `..` and
absolute symlinks resolve inside the root as they would in the container, and
the member itself is then created or changed through that directory fd without
following a symlink. tarfile.extractall is not used: its filters strip modes
images need (setuid, /tmp 1777) and check paths with the host's realpath.

The target is either an empty directory (the first layer) or the merged view
of an overlay mount over the lower layers, where deleting a lower entry makes
the kernel write the overlay whiteout into the upper directory.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

from agent.linux import open_in_root
from kran import errors

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
# aufs bookkeeping (".wh..wh.plnk/" and the like); moby skips it too.
AUFS_META_PREFIX = ".wh..wh."

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_COPY_CHUNK = 1 << 20
_SEND_MAX = 1 << 30  # sendfile(2) moves at most about 2 GiB per call
# Host problems (disk full, I/O error) are not the archive's fault; anything
# else an operation on a member fails with is.
_HOST_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM})
# Overlay keeps its own state in these; a layer must not forge it.
_FORBIDDEN_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")

class LayerError(Exception):
    """A member the extractor refuses; becomes errors.InvalidArgument."""


def clean_name(name: str) -> str:
    """The member name as a root-relative path with no `.` or empty parts.

    Raises LayerError for absolute names and any `..` component. The root
    itself comes back as "".
    """
    while name.startswith("./"):
        name = name[2:]
    if name.startswith("/"):
        raise LayerError("absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError("path contains '..'")
    return "/".join(parts)


def _symlink_escapes(name: str, target: str) -> bool:
    """True if a relative `target`, read from `name`'s directory, climbs above the root."""
    depth = name.count("/")  # components of the link's directory
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _split(path: str) -> tuple[str, str]:
    parent, _, base = path.rpartition("/")
    return parent, base


class _Extractor:
    """One pass over one tar into the directory `base` of the root open as root_fd.

    A layer (`layer=True`) is unpacked at the root and its whiteouts delete
    what they name; a copy (docker cp) is unpacked below `base`, takes
    `.wh.` names literally and, with `no_overwrite_dir_non_dir`, refuses to
    replace a directory by a non-directory or the reverse. Either way every
    path resolves inside the root.
    """

    def __init__(self, root_fd: int, base: str = "", *, layer: bool = True,
                 no_overwrite_dir_non_dir: bool = False, source_fd: int | None = None):
        self.root_fd = root_fd
        self.source_fd = source_fd  # the tar as a seekable file: file data is copied by the kernel
        self.base = clean_name(base.lstrip("/"))
        self.layer = layer
        self.no_overwrite_dir_non_dir = no_overwrite_dir_non_dir
        self.written: set[str] = set()  # paths this layer created; whiteouts leave them alone
        self.dir_mtimes: dict[str, int] = {}  # set last, once the children are in place
        self.size = 0

    def run(self, tar: tarfile.TarFile) -> int:
        what = "layer" if self.layer else "archive"
        for member in tar:
            try:
                self._member(tar, member)
            except LayerError as exc:
                raise errors.InvalidArgument(f"invalid {what}: {member.name}: {exc}") from None
            except OSError as exc:
                if exc.errno in _HOST_ERRNOS:
                    raise
                raise errors.InvalidArgument(
                    f"invalid {what}: {member.name}: {exc.strerror or exc}") from None
        self._set_dir_mtimes()
        return self.size

    def _in_base(self, path: str) -> str:
        return f"{self.base}/{path}" if self.base else path

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        path = clean_name(member.name)
        if not path:
            return  # "./": the layer root (or the copy's target) is ours, not the archive's
        if self.layer and path.startswith(AUFS_META_PREFIX) and path != OPAQUE_WHITEOUT:
            return
        path = self._in_base(path)
        parent, base = _split(path)
        if self.layer and base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, base)
            return
        if member.ischr() or member.isblk():
            raise LayerError("device nodes are not allowed")
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk() or member.isfifo()):
            raise LayerError(f"unsupported member type {member.type!r}")
        if member.issym() and not member.linkname.startswith("/") \
                and _symlink_escapes(path, member.linkname):
            raise LayerError(f"symlink target {member.linkname!r} leaves the root")
        parent_fd = self._parent_dir(parent)
        try:
            self._write(tar, member, path, parent_fd, base)
        finally:
            os.close(parent_fd)
        self.written.add(path)

    def _write(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: str,
               parent_fd: int, base: str) -> None:
        existing = _lstat(base, parent_fd)
        if self.no_overwrite_dir_non_dir and existing is not None \
                and stat.S_ISDIR(existing.st_mode) != member.isdir():
            if member.isdir():
                raise LayerError(f"cannot overwrite non-directory {path!r} with directory")
            raise LayerError(f"cannot overwrite directory {path!r} with non-directory")
        if member.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                _remove(base, parent_fd, existing)
                os.mkdir(base, 0o700, dir_fd=parent_fd)
            fd = os.open(base, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent_fd)
            try:
                _set_attrs(fd, member)
            finally:
                os.close(fd)
            self.dir_mtimes[path] = _mtime_ns(member)
            return
        self.dir_mtimes.pop(path, None)  # a directory replaced later in the same layer
        if member.islnk():
            self._hardlink(member, parent_fd, base, existing)
            return
        _remove(base, parent_fd, existing)
        if member.issym():
            os.symlink(member.linkname, base, dir_fd=parent_fd)
            os.chown(base, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
            mtime = _mtime_ns(member)
            os.utime(base, ns=(mtime, mtime), dir_fd=parent_fd, follow_symlinks=False)
            return
        if member.isfifo():
            os.mkfifo(base, 0o600, dir_fd=parent_fd)
            # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
            fd = os.open(base, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        else:
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=parent_fd)
        try:
            if member.isreg():
                if self.source_fd is not None and member.sparse is None:
                    self.size += _send(self.source_fd, member, fd)
                else:
                    self.size += _copy(tar, member, fd)
            _set_attrs(fd, member)
            mtime = _mtime_ns(member)
            os.utime(fd, ns=(mtime, mtime))
        finally:
            os.close(fd)

    def _hardlink(self, member: tarfile.TarInfo, parent_fd: int, base: str,
                  existing: os.stat_result | None) -> None:
        try:
            target = clean_name(member.linkname)
        except LayerError as exc:
            raise LayerError(f"hard link target {member.linkname!r}: {exc}") from None
        if not target:
            raise LayerError("hard link to the root directory")
        target = self._in_base(target)
        target_parent, target_base = _split(target)
        try:
            src_fd = open_in_root(self.root_fd, target_parent)
        except OSError:
            raise LayerError(f"hard link target {member.linkname!r} does not exist") from None
        try:
            source = _lstat(target_base, src_fd)
            if source is None:
                raise LayerError(f"hard link target {member.linkname!r} does not exist")
            if stat.S_ISDIR(source.st_mode):
                raise LayerError(f"hard link target {member.linkname!r} is a directory")
            if existing is not None and existing.st_ino == source.st_ino and existing.st_dev == source.st_dev:
                return  # already the same file
            _remove(base, parent_fd, existing)
            # follow_symlinks=False: a link to a symlink links the symlink itself, never what it points at.
            os.link(target_base, base, src_dir_fd=src_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
        finally:
            os.close(src_fd)

    def _whiteout(self, parent: str, base: str) -> None:
        if base == OPAQUE_WHITEOUT:
            fd = self._existing_dir(parent)
            if fd is not None:
                try:
                    self._make_opaque(fd, parent)
                finally:
                    os.close(fd)
            return
        name = base[len(WHITEOUT_PREFIX):]
        if name in ("", ".", ".."):
            raise LayerError("invalid whiteout name")
        hidden = f"{parent}/{name}" if parent else name
        if hidden in self.written:
            return
        fd = self._existing_dir(parent)
        if fd is None:
            return
        try:
            _remove(name, fd, _lstat(name, fd))
        finally:
            os.close(fd)

    def _make_opaque(self, dir_fd: int, path: str) -> None:
        """Delete every child of the directory that this layer did not write."""
        for name in os.listdir(dir_fd):
            child = f"{path}/{name}" if path else name
            st = _lstat(name, dir_fd)
            if st is None:
                continue
            if child not in self.written:
                _remove(name, dir_fd, st)
            elif stat.S_ISDIR(st.st_mode):
                fd = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
                try:
                    self._make_opaque(fd, child)
                finally:
                    os.close(fd)

    def _existing_dir(self, path: str) -> int | None:
        try:
            return open_in_root(self.root_fd, path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _parent_dir(self, path: str) -> int:
        """Open the directory `path`, creating missing components (mode 0755) like moby does."""
        try:
            return open_in_root(self.root_fd, path)
        except FileNotFoundError:
            pass
        fd = os.dup(self.root_fd)
        done = ""
        for part in path.split("/"):
            done = f"{done}/{part}" if done else part
            try:
                next_fd = open_in_root(self.root_fd, done)
            except FileNotFoundError:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    os.close(fd)
                    raise LayerError(f"parent {done!r} is a dangling symlink") from None
                self.written.add(done)
                next_fd = open_in_root(self.root_fd, done)
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
            fd = next_fd
        return fd

    def _set_dir_mtimes(self) -> None:
        # Deepest first, so nothing touches a directory after its time is set.
        for path in sorted(self.dir_mtimes, key=lambda p: p.count("/"), reverse=True):
            parent, base = _split(path)
            fd = self._existing_dir(parent)
            if fd is None:
                continue
            try:
                mtime = self.dir_mtimes[path]
                os.utime(base, ns=(mtime, mtime), dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                pass  # whited out later in the same layer
            finally:
                os.close(fd)


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(name: str, dir_fd: int, st: os.stat_result | None) -> None:
    """Remove `name` from the directory, recursively for a directory (never through a symlink)."""
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _mtime_ns(member: tarfile.TarInfo) -> int:
    return int(member.mtime * 1_000_000_000)


def _copy(tar: tarfile.TarFile, member: tarfile.TarInfo, fd: int) -> int:
    src = tar.extractfile(member)
    assert src is not None  # a regular file always has a stream
    written = 0
    with src:
        while chunk := src.read(_COPY_CHUNK):
            view = memoryview(chunk)
            while view:
                n = os.write(fd, view)
                view = view[n:]
                written += n
    return written


def _send(source_fd: int, member: tarfile.TarInfo, fd: int) -> int:
    """Copy a member's data from the tar file open as `source_fd` with sendfile(2): no pass through Python."""
    offset, left = member.offset_data, member.size
    while left:
        sent = os.sendfile(fd, source_fd, offset, min(left, _SEND_MAX))
        if sent == 0:
            raise tarfile.ReadError("unexpected end of data")
        offset += sent
        left -= sent
    return member.size


def _set_attrs(fd: int, member: tarfile.TarInfo) -> None:
    """Owner, xattrs, then mode: chown clears setuid/setgid, so the mode goes last."""
    os.fchown(fd, member.uid, member.gid)
    for key, value in member.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        attr = key[len("SCHILY.xattr."):]
        if attr.startswith(_FORBIDDEN_XATTR_PREFIXES):
            raise LayerError(f"xattr {attr!r} is reserved for overlayfs")
        try:
            os.setxattr(fd, attr, value.encode("utf-8", "surrogateescape"))
        except OSError as exc:
            if exc.errno != errno.EOPNOTSUPP:
                raise
    os.fchmod(fd, stat.S_IMODE(member.mode))


def extract_layer(tar_path: Path, root: Path) -> int:
    """Apply the uncompressed layer tar at `tar_path` onto the directory `root`.

    `root` is an empty directory or the merged view of an overlay over the
    lower layers. Returns the bytes of regular-file content written. Raises
    errors.InvalidArgument ("invalid layer: <member>: <reason>") for a member
    it refuses; the caller discards `root`'s upper layer, which may then be
    half-written.
    """
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        try:
            tar = tarfile.open(tar_path, mode="r:")
        except tarfile.TarError as exc:
            raise errors.InvalidArgument(f"invalid layer: not a tar archive: {exc}") from None
        with tar:
            try:
                return _Extractor(root_fd, source_fd=tar.fileobj.fileno()).run(tar)
            except tarfile.TarError as exc:
                raise errors.InvalidArgument(f"invalid layer: {exc}") from None
    finally:
        os.close(root_fd)


def extract_archive(stream: BinaryIO, root_fd: int, directory: str,
                    no_overwrite_dir_non_dir: bool = False) -> None:
    """Unpack the uncompressed tar read from `stream` into `directory` of the root open as `root_fd`.

    What docker cp does into a container: member names are relative to
    `directory`, but every path (and every symlink met on the way)
    resolves inside the root, so nothing lands outside it. `.wh.` names
    are ordinary files here. A refused member raises
    errors.InvalidArgument ("invalid archive: <member>: <reason>"); the
    members before it stay unpacked, as with docker cp.
    """
    try:
        tar = tarfile.open(fileobj=stream, mode="r|")
    except tarfile.TarError as exc:
        raise errors.InvalidArgument(f"invalid archive: not a tar archive: {exc}") from None
    with tar:
        try:
            _Extractor(root_fd, directory, layer=False,
                       no_overwrite_dir_non_dir=no_overwrite_dir_non_dir).run(tar)
        except tarfile.TarError as exc:
            raise errors.InvalidArgument(f"invalid archive: {exc}") from None
