"""Build layer tars in memory, well-formed or hostile, for the extraction tests."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

MTIME = 1_600_000_000

Member = tuple[tarfile.TarInfo, bytes | None]


def _info(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0, mtime: int = MTIME) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = mtime
    return info


def reg(name: str, data: bytes = b"data", mode: int = 0o644, uid: int = 0, gid: int = 0,
        mtime: int = MTIME, xattrs: dict[str, str] | None = None) -> Member:
    info = _info(name, tarfile.REGTYPE, mode, uid, gid, mtime)
    info.size = len(data)
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return info, data


def directory(name: str, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: int = MTIME) -> Member:
    return _info(name, tarfile.DIRTYPE, mode, uid, gid, mtime), None


def symlink(name: str, target: str, uid: int = 0, gid: int = 0) -> Member:
    info = _info(name, tarfile.SYMTYPE, 0o777, uid, gid)
    info.linkname = target
    return info, None


def hardlink(name: str, target: str) -> Member:
    info = _info(name, tarfile.LNKTYPE, 0o644)
    info.linkname = target
    return info, None


def fifo(name: str, mode: int = 0o640) -> Member:
    return _info(name, tarfile.FIFOTYPE, mode), None


def device(name: str, kind: bytes = tarfile.CHRTYPE) -> Member:
    info = _info(name, kind, 0o666)
    info.devmajor, info.devminor = 1, 3  # /dev/null
    return info, None


def whiteout(path: str) -> Member:
    """The marker deleting `path` from the layers below."""
    parent, _, name = path.rpartition("/")
    return reg(f"{parent}/.wh.{name}" if parent else f".wh.{name}", b"")


def write_tar(path: Path, *members: Member, global_headers: dict[str, str] | None = None) -> Path:
    """Write the members, in order, as an uncompressed PAX tar at `path`."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT, pax_headers=global_headers) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path
