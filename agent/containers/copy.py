"""docker cp: a tar of a path inside a container, and a tar unpacked into a directory of it.

The container's root is a directory fd and every path is resolved inside
it with openat2(RESOLVE_IN_ROOT), so a symlink in the container (even one
to "/") or in the archive never reaches the host (the CVE-2018-15664
class: nothing is resolved by name on the host).

The root of a running container is its init's /proc/<pid>/root, which
shows what the container sees (its own mounts included). A stopped
container gets a temporary overlay mount: to read, a read-only overlay
whose top lower dir is the container's upper dir (overlayfs honours its
whiteouts and opaque dirs as in any lower layer, and no work dir is
needed); to write, the container's own upper and work dirs, so the copy
persists as if it had been written while it ran.
"""

from __future__ import annotations

import errno
import os
import posixpath
import select
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from agent.images.extract import extract_archive
from agent.images.tarwrite import TreeWriter, open_tar
from agent.linux import mount_overlay, open_in_root, unmount
from kran import errors

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_MISSING = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP})


def _open_process_root(pid: int) -> int:
    """/proc/<pid>/root as a directory fd, making sure it is that process's and not a reused pid's."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise errors.FailedPrecondition(f"the container's process {pid} has exited") from None
    try:
        root_fd = os.open(f"/proc/{pid}/root", _DIR_FLAGS)
        # A pidfd becomes readable when its process exits: still quiet, so the root above is its.
        if select.select([pidfd], [], [], 0)[0]:
            os.close(root_fd)
            raise errors.FailedPrecondition(f"the container's process {pid} has exited")
        return root_fd
    except FileNotFoundError:
        raise errors.FailedPrecondition(f"the container's process {pid} has exited") from None
    finally:
        os.close(pidfd)


@contextmanager
def container_root(pid: int | None, lowers: list[Path], upper: Path, work: Path, scratch: Path,
                   writable: bool) -> Iterator[int]:
    """A directory fd of the container's root filesystem, for the duration.

    `pid` is the running container's init (host pid), or None for a stopped
    container: then the image's `lowers` (top first) and the container's
    `upper` (and `work`, when `writable`) are mounted in a temporary
    directory made in `scratch`, and unmounted afterwards.
    """
    if pid is not None:
        root_fd = _open_process_root(pid)
        try:
            yield root_fd
        finally:
            os.close(root_fd)
        return
    mountpoint = Path(tempfile.mkdtemp(prefix=".cp-", dir=scratch))
    try:
        if writable:
            mount_overlay(mountpoint, lowers, upper, work)
        else:
            mount_overlay(mountpoint, [upper, *lowers])
        try:
            root_fd = os.open(mountpoint, _DIR_FLAGS)
            try:
                yield root_fd
            finally:
                os.close(root_fd)
        finally:
            unmount(mountpoint)
    finally:
        mountpoint.rmdir()


def _not_found(path: str, container: str) -> errors.NotFound:
    return errors.NotFound(f"Could not find the file {path} in container {container}")


def copy_from(root_fd: int, path: str, container: str, out: BinaryIO) -> None:
    """Write a tar of `path` (file or directory) inside the root to `out`, as docker cp CONTAINER:PATH - does.

    The entry is named by the path's last component. A symlink is copied
    as the link itself, unless the path ends with "/" (then it must lead to
    a directory). A path ending with "/." copies the directory's contents
    (names start with "./"), and so does "/". Raises errors.NotFound
    ("Could not find the file ... in container ...") for a missing path.
    """
    if not path:
        raise errors.InvalidArgument("no path given to copy from the container")
    clean = posixpath.normpath("/" + path)
    base = posixpath.basename(clean)
    follow = path.endswith("/") or path.endswith("/.") or path == "." or clean == "/"
    try:
        dir_fd = open_in_root(root_fd, clean if follow else posixpath.dirname(clean))
    except OSError as exc:
        if exc.errno in _MISSING:
            if follow and exc.errno == errno.ENOTDIR:
                raise errors.InvalidArgument(f"{path}: not a directory") from None
            raise _not_found(path, container) from None
        raise
    try:
        if not follow:
            try:
                os.stat(base, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                raise _not_found(path, container) from None
        with open_tar(out) as tar:
            writer = TreeWriter(tar)
            if not follow:
                writer.add(dir_fd, base, base)
            else:
                contents = path.endswith("/.") or path == "." or clean == "/"
                writer.add(dir_fd, ".", "." if contents else base)
    finally:
        os.close(dir_fd)


def copy_to(root_fd: int, directory: str, stream: BinaryIO, container: str,
            no_overwrite_dir_non_dir: bool = False) -> None:
    """Unpack the tar read from `stream` into `directory` inside the root (docker cp - CONTAINER:DIR).

    A missing directory is errors.NotFound, a path that is no directory
    errors.InvalidArgument; members are unpacked with the image store's
    extractor (so `..`, escaping links and devices are refused), below the
    directory but resolved inside the root.
    """
    clean = posixpath.normpath("/" + directory)
    try:
        os.close(open_in_root(root_fd, clean, os.O_PATH))
    except OSError as exc:
        if exc.errno in _MISSING:
            raise _not_found(directory, container) from None
        raise
    try:
        os.close(open_in_root(root_fd, clean))
    except NotADirectoryError:
        raise errors.InvalidArgument("extraction point is not a directory") from None
    extract_archive(stream, root_fd, clean, no_overwrite_dir_non_dir)
