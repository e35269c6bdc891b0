"""The container's filesystem, built inside its own mount namespace.

In runc's order: make every mount private, mount the overlay root, mount
what config.json lists (each target opened with openat2 inside the root, so
an image's symlinks cannot point a mount at the host), create the device
nodes, pivot_root and detach the old root, then mask and make read-only the
paths Docker masks. Stdlib only (runs in the container's init).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent import linux

# Option -> (flags to set, flags to clear); anything else goes to the filesystem.
_FLAGS = {
    "ro": (linux.MS_RDONLY, 0), "rw": (0, linux.MS_RDONLY),
    "nosuid": (linux.MS_NOSUID, 0), "nodev": (linux.MS_NODEV, 0), "noexec": (linux.MS_NOEXEC, 0),
    "strictatime": (linux.MS_STRICTATIME, 0),
    "bind": (linux.MS_BIND, 0), "rbind": (linux.MS_BIND | linux.MS_REC, 0),
}
_PROPAGATION = {"private": linux.MS_PRIVATE, "rprivate": linux.MS_PRIVATE | linux.MS_REC}
# (name, major, minor); created with mknod, as runc does outside a user namespace.
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))


def parse_options(options: list[str]) -> tuple[int, int, str]:
    """(flags, propagation flags, data string) for an OCI mount's options."""
    flags = propagation = 0
    data = []
    for option in options:
        if option in _FLAGS:
            add, clear = _FLAGS[option]
            flags = (flags | add) & ~clear
        elif option in _PROPAGATION:
            propagation |= _PROPAGATION[option]
        else:
            data.append(option)
    return flags, propagation, ",".join(data)


_DIR = os.O_RDONLY | os.O_DIRECTORY


@contextmanager
def _target(root_fd: int, path: str, is_file: bool) -> Iterator[str]:
    """A /proc/self/fd path to `path` inside the root, created if missing."""
    try:
        fd = linux.open_in_root(root_fd, path, os.O_PATH)
    except FileNotFoundError:
        parent, _, name = path.rstrip("/").rpartition("/")
        _mkdirs(root_fd, parent)
        parent_fd = linux.open_in_root(root_fd, parent or "/", _DIR)
        try:
            if is_file:
                os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644,
                                 dir_fd=parent_fd))
            else:
                os.mkdir(name, 0o755, dir_fd=parent_fd)
        finally:
            os.close(parent_fd)
        fd = linux.open_in_root(root_fd, path, os.O_PATH)
    try:
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _mkdirs(root_fd: int, path: str) -> None:
    """mkdir -p inside the root."""
    current = ""
    for part in [p for p in path.split("/") if p]:
        parent = current or "/"
        current = f"{current}/{part}"
        try:
            os.close(linux.open_in_root(root_fd, current, os.O_PATH | os.O_DIRECTORY))
            continue
        except FileNotFoundError:
            pass
        parent_fd = linux.open_in_root(root_fd, parent, _DIR)
        try:
            os.mkdir(part, 0o755, dir_fd=parent_fd)
        except FileExistsError:
            pass
        finally:
            os.close(parent_fd)


def _mount_one(root_fd: int, mount: dict) -> None:
    flags, propagation, data = parse_options(mount.get("options", []))
    kind = mount.get("type", "bind")
    source = mount.get("source", "none")
    is_bind = bool(flags & linux.MS_BIND) or kind == "bind"
    is_file = is_bind and not os.path.isdir(source)
    with _target(root_fd, mount["destination"], is_file) as target:
        if is_bind:
            linux.mount(source, target, None, linux.MS_BIND | (flags & linux.MS_REC))
        else:
            linux.mount(source, target, kind, flags, data or None)
    if not (is_bind and flags & ~(linux.MS_BIND | linux.MS_REC)) and not propagation:
        return
    # The fd above names what was under the mount; the new mount needs a new fd.
    with _target(root_fd, mount["destination"], is_file) as target:
        if is_bind and flags & ~(linux.MS_BIND | linux.MS_REC):
            linux.mount(None, target, None, flags | linux.MS_BIND | linux.MS_REMOUNT)
        if propagation:
            linux.mount(None, target, None, propagation)


def _make_devices(root_fd: int) -> None:
    dev_fd = linux.open_in_root(root_fd, "/dev", os.O_RDONLY | os.O_DIRECTORY)
    old_umask = os.umask(0)
    try:
        for name, major, minor in DEVICES:
            os.mknod(name, stat.S_IFCHR | 0o666, os.makedev(major, minor), dir_fd=dev_fd)
        for name, target in DEV_LINKS:
            os.symlink(target, name, dir_fd=dev_fd)
    finally:
        os.umask(old_umask)
        os.close(dev_fd)


def _pivot(root: str) -> None:
    """Make `root` the root, then detach the old one (runc's pivot_root(".", ".") way)."""
    os.chdir(root)
    linux.pivot_root(".", ".")
    # The old root is now stacked under "."; it must not propagate its unmount.
    linux.mount(None, ".", None, linux.MS_REC | linux.MS_PRIVATE)
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")


def _mask(path: str) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY)
    else:
        linux.mount("/dev/null", path, None, linux.MS_BIND)


def _read_only(path: str) -> None:
    """Bind `path` on itself and make that mount read-only, keeping its nosuid, nodev, noexec."""
    try:
        linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC)
    except FileNotFoundError:
        return
    # mount_setattr changes the one flag; a remount would need the others read back from mountinfo.
    linux.mount_setattr(path, linux.MOUNT_ATTR_RDONLY)


def setup(bundle: str, config: dict, lowers: list[str], upper: str, work: str) -> None:
    """Build the container's root at bundle/rootfs over the image's `lowers` (top first) and enter it."""
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    root = os.path.join(bundle, config["root"]["path"])
    linux.mount_overlay(root, [Path(p) for p in lowers], upper, work, nosuid=False)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for mount in config.get("mounts", []):
            _mount_one(root_fd, mount)
        _make_devices(root_fd)
    finally:
        os.close(root_fd)
    _pivot(root)
    linux_config = config.get("linux", {})
    for path in linux_config.get("maskedPaths", []):
        _mask(path)
    for path in linux_config.get("readonlyPaths", []):
        _read_only(path)
