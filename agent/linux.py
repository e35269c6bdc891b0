"""The Linux system calls Python 3.11 lacks, through ctypes: the agent's one home for them.

Stdlib only: this module runs in the forkserver, the shims and the
container's init before it execs, where grpc must never be loaded.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
from pathlib import Path

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
# CDLL looks a function up on its first use; do it here, at import, so the
# processes the forkserver forks share the function objects instead of each
# making (and paying for) its own.
for _name in ("prctl", "unshare", "setns", "mount", "umount2", "capset", "syncfs"):
    getattr(_libc, _name)

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_STRICTATIME = 1 << 24
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

_SYS_PIVOT_ROOT = 155  # x86_64
# These are the same on every architecture.
_SYS_OPENAT2 = 437
_SYS_FSOPEN, _SYS_FSCONFIG, _SYS_FSMOUNT, _SYS_MOVE_MOUNT = 430, 431, 432, 429
_SYS_MOUNT_SETATTR = 442
_FSOPEN_CLOEXEC = 0x1
_FSCONFIG_SET_STRING = 1
_FSCONFIG_CMD_CREATE = 6
_FSMOUNT_CLOEXEC = 0x1
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4
MOUNT_ATTR_RDONLY = _MOUNT_ATTR_RDONLY
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _check(result: int, what: str, *paths: object) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", *[str(p) for p in paths[:1]])
    return result


def unshare(flags: int) -> None:
    """Move this process into new namespaces (CLONE_NEW* flags)."""
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    """Move this process into the namespace `fd` refers to (/proc/PID/ns/*).

    A pid namespace applies to the children forked afterwards, not to the caller.
    """
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    """mount(2); `data` is the filesystem's option string."""
    enc = lambda value: None if value is None else os.fsencode(value)  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {fstype or 'bind'} on {target}", target)


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    _check(_libc.umount2(os.fsencode(target), ctypes.c_int(flags)), f"umount {target}", target)


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2) (glibc has no wrapper)."""
    _check(_libc.syscall(ctypes.c_long(_SYS_PIVOT_ROOT), os.fsencode(new_root), os.fsencode(put_old)),
           "pivot_root", new_root)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def open_in_root(root_fd: int, path: str, flags: int = os.O_RDONLY | os.O_DIRECTORY) -> int:
    """Open `path` relative to `root_fd`, resolving every component inside it.

    openat2(RESOLVE_IN_ROOT): symlinks are followed, but `..` stops at the
    root and absolute targets start from it, as if chrooted there.
    """
    how = _OpenHow(flags=flags | os.O_CLOEXEC, mode=0,
                   resolve=_RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    encoded = os.fsencode(path.lstrip("/") or ".")
    while True:
        fd = _libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(root_fd), ctypes.c_char_p(encoded),
                           ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        # EAGAIN: a concurrent rename somewhere in the tree; the kernel asks for a retry.
        if err not in (errno.EINTR, errno.EAGAIN):
            raise OSError(err, os.strerror(err), path)


def _syscall(number: int, *args: object) -> int:
    result = _libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def _fs_log(fs_fd: int) -> str:
    """The messages the kernel queued on an fs context (why fsconfig refused)."""
    lines = []
    while True:
        try:
            lines.append(os.read(fs_fd, 4096).decode(errors="replace").strip())
        except OSError:
            return "; ".join(lines)


def mount_overlay(target: Path | str, lowers: list[Path], upper: Path | str | None = None,
                  work: Path | str | None = None, *, nosuid: bool = True) -> None:
    """Mount an overlay at `target`: `lowers` top first, read-only unless `upper`/`work` are given.

    The new mount API (fsopen/fsconfig/fsmount) adds lower dirs one by one
    (`lowerdir+`, Linux 6.8), so there is no limit from the one-page option
    string of mount(2); an older kernel gets mount_overlay_classic. Without an
    upper dir the kernel wants at least two lowers. Always nodev; nosuid
    unless asked otherwise (a container's root keeps its setuid binaries).
    redirect_dir, index and metacopy are off so an upper dir stays a plain
    directory usable as a lower dir later.
    """
    try:
        _mount_overlay_fs(target, lowers, upper, work, nosuid)
    except _NoLowerdirPlus:
        mount_overlay_classic(target, lowers, upper, work, nosuid=nosuid)


class _NoLowerdirPlus(Exception):
    """The kernel predates overlayfs's `lowerdir+` (Linux 6.8)."""


def _mount_overlay_fs(target: Path | str, lowers: list[Path], upper: Path | str | None,
                      work: Path | str | None, nosuid: bool) -> None:
    fs_fd = _syscall(_SYS_FSOPEN, b"overlay", ctypes.c_uint(_FSOPEN_CLOEXEC))
    try:
        options: list[tuple[str, str]] = [("lowerdir+", str(p)) for p in lowers]
        if upper is not None:
            options += [("upperdir", str(upper)), ("workdir", str(work))]
        options += [("redirect_dir", "off"), ("index", "off"), ("metacopy", "off")]
        try:
            for key, value in options:
                _syscall(_SYS_FSCONFIG, ctypes.c_int(fs_fd), ctypes.c_uint(_FSCONFIG_SET_STRING),
                         ctypes.c_char_p(key.encode()), ctypes.c_char_p(os.fsencode(value)), ctypes.c_int(0))
            _syscall(_SYS_FSCONFIG, ctypes.c_int(fs_fd), ctypes.c_uint(_FSCONFIG_CMD_CREATE),
                     None, None, ctypes.c_int(0))
        except OSError as exc:
            detail = _fs_log(fs_fd)
            if key == "lowerdir+" and exc.errno == errno.EINVAL:  # "Unknown parameter" before 6.8
                raise _NoLowerdirPlus() from None
            raise OSError(exc.errno, f"overlay mount at {target}: {exc.strerror}"
                          + (f" ({detail})" if detail else "")) from None
        attrs = _MOUNT_ATTR_NODEV | (_MOUNT_ATTR_NOSUID if nosuid else 0)
        attrs |= 0 if upper is not None else _MOUNT_ATTR_RDONLY
        mnt_fd = _syscall(_SYS_FSMOUNT, ctypes.c_int(fs_fd), ctypes.c_uint(_FSMOUNT_CLOEXEC), ctypes.c_uint(attrs))
    finally:
        os.close(fs_fd)
    try:
        _syscall(_SYS_MOVE_MOUNT, ctypes.c_int(mnt_fd), ctypes.c_char_p(b""), ctypes.c_int(-1),
                 ctypes.c_char_p(os.fsencode(str(target))), ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH))
    finally:
        os.close(mnt_fd)


MAX_MOUNT_DATA = 4095  # mount(2) takes one page of options, with its NUL


def mount_overlay_classic(target: Path | str, lowers: list[Path], upper: Path | str | None = None,
                          work: Path | str | None = None, *, nosuid: bool = True) -> None:
    """mount_overlay through mount(2) and one option string, for kernels before 6.8.

    The string holds at most a page, which bounds how many layers an image
    may have on such a kernel; past it the error says so.
    """
    options = "lowerdir=" + ":".join(str(p) for p in lowers)
    if upper is not None:
        options += f",upperdir={upper},workdir={work}"
    options += ",redirect_dir=off,index=off,metacopy=off"
    if len(options) > MAX_MOUNT_DATA:
        raise OSError(errno.E2BIG, f"overlay mount at {target}: {len(lowers)} layers do not fit in "
                      "mount(2)'s options on this kernel (Linux 6.8 lifts the limit)")
    flags = MS_NODEV | (MS_NOSUID if nosuid else 0) | (0 if upper is not None else MS_RDONLY)
    mount("overlay", str(target), "overlay", flags, options)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(target: str, attr_set: int, attr_clr: int = 0) -> None:
    """mount_setattr(2) on the mount at `target` alone (MOUNT_ATTR_* flags); its other flags stay."""
    attr = _MountAttr(attr_set=attr_set, attr_clr=attr_clr)
    _check(_libc.syscall(ctypes.c_long(_SYS_MOUNT_SETATTR), ctypes.c_int(-100),  # AT_FDCWD
                         ctypes.c_char_p(os.fsencode(target)), ctypes.c_uint(0),
                         ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))),
           f"mount_setattr {target}", target)


def unmount(target: Path | str) -> None:
    """Detach the mount at `target` (lazily, so open files cannot keep it busy)."""
    umount2(str(target), MNT_DETACH)


def mounts_below(root: Path) -> list[Path]:
    """Mount points strictly below `root`, deepest first."""
    prefix = str(root).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            # Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point.startswith(prefix):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def syncfs(path: Path) -> None:
    """Flush the filesystem holding `path` to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2) with integer arguments."""
    return _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                              ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)), "prctl")


def set_name(name: str) -> None:
    """Set this thread's comm (what ps shows), at most 15 bytes."""
    _check(_libc.prctl(ctypes.c_int(PR_SET_NAME), name.encode()[:15], 0, 0, 0), "prctl(PR_SET_NAME)")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets (64-bit masks)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def last_cap() -> int:
    """The highest capability number this kernel knows."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())
