"""COPY and ADD sources: which files a source names, and a checksum of what they hold.

Sources are looked up in a root: the build context (a directory the
client's tar was unpacked into) or another stage's or image's root
filesystem. Every path resolves inside that root (openat2 RESOLVE_IN_ROOT),
so a symlink in the context cannot reach the host; a path that climbs out
of it (`../x`) is refused as Docker refuses it. Wildcards (`*`, `?`,
`[...]`) match one path component each, as Go's filepath.Match does.

The checksum covers, for every entry below each source, its relative
name, type, permission bits, owner, link target and content, but not
its times: touching a file does not invalidate the cache, changing it does.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from agent.linux import open_in_root
from kran import errors

_GLOB_RE = re.compile(r"[*?\[]")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = 1 << 20
_MISSING = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP})


@dataclass(frozen=True)
class Source:
    """A matched source: its path inside the root after symlinks (no leading "/"), and whether it is a directory."""

    path: str
    is_dir: bool
    name: str  # the last component of the path as written (what a copy into a directory calls it)


class Root:
    """A directory sources are looked up in, given as a directory fd (the caller keeps and closes it)."""

    def __init__(self, fd: int, what: str) -> None:
        """`what` names it in errors: "build context", or "stage builder"."""
        self.fd = fd
        self.what = what
        self.path = Path(os.readlink(f"/proc/self/fd/{fd}"))

    def _missing(self, text: str) -> errors.NotFound:
        if self.what == "build context":
            return errors.NotFound(f"file not found in build context or excluded by .dockerignore: "
                                   f"stat {text}: file does not exist")
        return errors.NotFound(f"file not found in {self.what}: stat {text}: file does not exist")

    def resolve(self, text: str) -> Source:
        """The entry `text` names, following symlinks inside the root; errors.NotFound if there is none."""
        rel = clean(text)
        try:
            fd = open_in_root(self.fd, rel, os.O_PATH)
        except OSError as exc:
            if exc.errno in _MISSING:
                raise self._missing(text) from None
            raise
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
            st = os.fstat(fd)
        finally:
            os.close(fd)
        inside = os.path.relpath(real, self.path)
        if inside == ".":
            inside = ""
        if inside.startswith(".."):  # cannot happen with RESOLVE_IN_ROOT; refuse rather than trust it
            raise errors.InvalidArgument(f"forbidden path outside the {self.what}: {text} ()")
        return Source(inside, stat.S_ISDIR(st.st_mode), posixpath.basename(rel) or posixpath.basename(inside))

    def match(self, text: str) -> list[Source]:
        """Every entry a source (maybe with wildcards) names, sorted; errors.NotFound when none does."""
        rel = clean(text)
        if not _GLOB_RE.search(rel):
            return [self.resolve(text)]
        found = sorted(self._glob("", rel.split("/") if rel else []))
        if not found:
            raise errors.NotFound("no source files were specified")
        return [self.resolve(path) for path in found]

    def _glob(self, prefix: str, parts: list[str]) -> list[str]:
        if not parts:
            return [prefix]
        head, rest = parts[0], parts[1:]
        joined = lambda name: f"{prefix}/{name}" if prefix else name  # noqa: E731
        if not _GLOB_RE.search(head):
            return self._glob(joined(head), rest) if self._exists(joined(head)) else []
        try:
            fd = open_in_root(self.fd, prefix or ".")
        except OSError as exc:
            if exc.errno in _MISSING:
                return []
            raise
        try:
            names = os.listdir(fd)
        finally:
            os.close(fd)
        pattern = _go_pattern(head)
        return [path for name in sorted(names) if fnmatch.fnmatchcase(name, pattern)
                for path in self._glob(joined(name), rest)]

    def _exists(self, rel: str) -> bool:
        try:
            os.close(open_in_root(self.fd, rel, os.O_PATH))
        except OSError as exc:
            if exc.errno in _MISSING:
                return False
            raise
        return True

    def digest(self, sources: list[Source]) -> str:
        """The checksum of what the sources hold (see the module's docstring), as 64 hex digits."""
        hasher = hashlib.sha256()
        for source in sources:
            hasher.update(f"source {source.name}\0".encode())
            parent, _, base = source.path.rpartition("/")
            if not base:  # the root itself
                _hash_children(self.fd, "", hasher)
                continue
            dir_fd = open_in_root(self.fd, parent or ".")
            try:
                _hash_entry(dir_fd, base, "", hasher)
            finally:
                os.close(dir_fd)
        return hasher.hexdigest()

    def open_parent(self, source: Source) -> tuple[int, str]:
        """(fd of the source's directory, the source's name in it); the root itself is (root fd copy, ".")."""
        parent, _, base = source.path.rpartition("/")
        if not base:
            return os.dup(self.fd), "."
        return open_in_root(self.fd, parent or "."), base


def clean(text: str) -> str:
    """A source path relative to the root (no leading "/", no `.`); InvalidArgument if it climbs out."""
    path = posixpath.normpath(text.lstrip("/") or ".")
    if path == ".." or path.startswith("../"):
        raise errors.InvalidArgument(f"forbidden path outside the build context: {text} ()")
    return "" if path == "." else path


def _go_pattern(pattern: str) -> str:
    """Go's filepath.Match negation `[^...]` in fnmatch's spelling `[!...]`."""
    return pattern.replace("[^", "[!")


def _hash_entry(dir_fd: int, name: str, rel: str, hasher: hashlib._Hash) -> None:
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    kind = stat.S_IFMT(st.st_mode)
    hasher.update(f"{rel}\0{kind:o}\0{stat.S_IMODE(st.st_mode):o}\0{st.st_uid}:{st.st_gid}\0".encode())
    if stat.S_ISLNK(st.st_mode):
        hasher.update(os.fsencode(os.readlink(name, dir_fd=dir_fd)) + b"\0")
    elif stat.S_ISREG(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            content = hashlib.sha256()
            while chunk := os.read(fd, _READ):
                content.update(chunk)
        finally:
            os.close(fd)
        hasher.update(content.digest())
    elif stat.S_ISDIR(st.st_mode):
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        try:
            _hash_children(fd, rel, hasher)
        finally:
            os.close(fd)


def _hash_children(fd: int, rel: str, hasher: hashlib._Hash) -> None:
    for child in sorted(os.listdir(fd)):
        _hash_entry(fd, child, f"{rel}/{child}" if rel else child, hasher)
