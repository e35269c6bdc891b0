""".dockerignore: which files of a build context stay on the client, as Docker decides.

One pattern a line; blank lines and lines starting with `#` are ignored.
Patterns are cleaned (`./a/../b` is `b`, a leading `/` is dropped) and
matched against paths relative to the context root: `*` matches within
one path component, `?` one character, `[...]` a class, `**` any number
of components (also none), `\\` escapes. A pattern that matches a
directory also matches everything below it. `!pattern` brings matching
paths back; the last pattern that matches a path decides.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

# What Docker escapes: characters regexps treat specially that filepath.Match does not.
_REGEX_SPECIAL = set(".+()|{}$")


@dataclass(frozen=True)
class Pattern:
    """One cleaned pattern, compiled; `exclusion` for a `!` pattern."""

    text: str
    exclusion: bool
    regex: re.Pattern[str]

    def matches(self, path: str) -> bool:
        """Whether the pattern matches the path itself."""
        return self.regex.match(path) is not None


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, cleaned as Docker cleans them (`!` kept in front)."""
    patterns = []
    for number, line in enumerate(text.splitlines()):
        pattern = (line.removeprefix("\ufeff") if number == 0 else line).strip()
        if not pattern or pattern.startswith("#"):
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern.lstrip("/") or "/"
        patterns.append("!" + pattern if invert else pattern)
    return patterns


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < len(pattern) and pattern[i] == "*":
                i += 1
                if i < len(pattern) and pattern[i] == "/":
                    i += 1
                out.append(".*" if i == len(pattern) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i < len(pattern):
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append(r"\\")
        elif ch in "[]":
            out.append(ch)
        elif ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    out.append("$")
    try:
        return re.compile("".join(out))
    except re.error as exc:
        raise ValueError(f"invalid pattern {pattern!r} in .dockerignore: {exc}") from None


class Matcher:
    """The patterns of one .dockerignore, in order."""

    def __init__(self, patterns: list[str]) -> None:
        """Raises ValueError for a pattern that is not one."""
        self.patterns = []
        for text in patterns:
            exclusion = text.startswith("!")
            body = text[1:] if exclusion else text
            self.patterns.append(Pattern(body, exclusion, _compile(body)))
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether the context path (relative, "/"-separated) stays on the client."""
        matched = False
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            match = pattern.matches(path)
            if not match:
                match = any(pattern.matches("/".join(parents[:i + 1])) for i in range(len(parents)))
            if match:
                matched = not pattern.exclusion
        return matched
