"""Reading a Dockerfile into instruction lines, as Docker's parser does.

Parser directives (`# escape=``, `# syntax=...`) are read at the top of
the file, before any comment, blank line or instruction. Lines whose first
non-blank character is `#` are comments, also between continued lines; a
line ending with the escape character (and maybe blanks) continues on the
next. Each instruction is its keyword (any case), its `--flags` and the
rest of the line, split as its keyword wants it: a JSON array or a shell
string (RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK's command), a JSON array or
words (COPY, ADD, VOLUME), name=value pairs (ENV, LABEL, ARG), words (FROM,
EXPOSE) or the plain rest (USER, WORKDIR, STOPSIGNAL, MAINTAINER); ONBUILD
holds another instruction. Variables are left for the build to expand.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from kran import errors

KEYWORDS = ("add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
            "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir")
_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_WHITESPACE_RE = re.compile(r"[\t\v\f\r ]+")
_KNOWN_DIRECTIVES = ("escape", "syntax", "check")
_HEREDOC_RE = re.compile(r"<<-?(['\"]?)[A-Za-z_][A-Za-z0-9_]*\1")


class ParseError(errors.InvalidArgument):
    """A Dockerfile Docker would refuse, with the line it is on."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"dockerfile parse error on line {line}: {message}")
        self.line = line


@dataclass
class Node:
    """One instruction as written.

    `keyword` is lower case. `words` holds the arguments of the word forms
    and of JSON arrays (`json` True); `raw` the rest of the line for the
    string forms; `pairs` the (name, value or None) of ENV, LABEL and ARG,
    still quoted; `sub` the instruction of an ONBUILD; `original` the
    whole instruction as one line; `line` and `end_line` where it is.
    """

    keyword: str
    line: int
    end_line: int
    original: str
    flags: list[str] = field(default_factory=list)
    raw: str = ""
    words: list[str] = field(default_factory=list)
    json: bool = False
    pairs: list[tuple[str, str | None]] = field(default_factory=list)
    sub: Node | None = None


@dataclass
class Dockerfile:
    """The parsed file: its escape character and instructions in order."""

    escape: str
    nodes: list[Node]
    directives: dict[str, str] = field(default_factory=dict)


def _read_directives(lines: list[str]) -> tuple[dict[str, str], int]:
    """The directives at the top and the index of the first line after them."""
    found: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = _DIRECTIVE_RE.match(line.strip()) if line.lstrip().startswith("#") else None
        if match is None:
            return found, index
        name, value = match.group(1).lower(), match.group(2)
        if name not in _KNOWN_DIRECTIVES:
            return found, index  # an unknown directive is a comment, and ends the directives
        if name in found:
            raise ParseError(index + 1, f"only one {name} parser directive can be used")
        found[name] = value
    return found, len(lines)


def _continues(line: str, escape: str) -> tuple[str, bool]:
    """(the line without a trailing escape character, whether it continues on the next line)."""
    stripped = line.rstrip(" \t")
    if stripped.endswith(escape):
        return stripped[:-1], True
    return line, False


def parse(text: str) -> Dockerfile:
    """Parse a Dockerfile; ParseError names the line of what it refuses."""
    lines = text.removeprefix("\ufeff").splitlines()
    directives, start = _read_directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise ParseError(1, f"invalid escape token '{escape}' does not match ` or \\")
    nodes = []
    index = start
    while index < len(lines):
        line = lines[index].lstrip()
        index += 1
        first = index
        if not line or line.startswith("#"):
            continue
        joined, more = _continues(line, escape)
        while more and index < len(lines):
            following = lines[index]
            index += 1
            if following.lstrip().startswith("#") or not following.strip():
                continue  # comments and blank lines inside a continued instruction are skipped
            part, more = _continues(following, escape)
            joined += part
        if not joined.strip():
            continue
        nodes.append(_node(joined, first, index, escape))
    return Dockerfile(escape, nodes, directives)


def _node(line: str, first: int, last: int, escape: str) -> Node:
    try:
        return parse_line(line, escape, first, last)
    except ParseError:
        raise
    except errors.InvalidArgument as exc:
        raise ParseError(first, str(exc)) from None


def parse_line(line: str, escape: str = "\\", first: int = 1, last: int = 1) -> Node:
    """One instruction line (no continuations) as a Node."""
    parts = _WHITESPACE_RE.split(line.strip(), maxsplit=1)
    keyword = parts[0].lower()
    rest, flags = extract_flags(parts[1]) if len(parts) > 1 else ("", [])
    rest = rest.strip()
    if keyword not in KEYWORDS:
        raise ParseError(first, f"unknown instruction: {parts[0].upper()}")
    node = Node(keyword, first, last, line.strip(), flags)
    if keyword in ("run", "copy", "add") and _HEREDOC_RE.search(rest):
        raise ParseError(first, f"{keyword.upper()} with a heredoc (<<EOF) needs BuildKit; "
                                "kran's builder does not support heredocs")
    if keyword in ("run", "cmd", "entrypoint", "shell"):
        _maybe_json(node, rest)
    elif keyword in ("copy", "add", "volume"):
        _maybe_json(node, rest)
        if not node.json:
            node.words = _WHITESPACE_RE.split(rest) if rest else []
    elif keyword in ("env", "label", "arg"):
        node.pairs = _pairs(keyword, rest, escape)
    elif keyword in ("from", "expose"):
        node.words = _WHITESPACE_RE.split(rest) if rest else []
    elif keyword == "onbuild":
        if not rest:
            raise ParseError(first, "ONBUILD requires at least one argument")
        node.sub = parse_line(rest, escape, first, last)
        if node.sub.keyword in ("onbuild", "from", "maintainer"):
            what = "Chaining ONBUILD via `ONBUILD ONBUILD`" if node.sub.keyword == "onbuild" \
                else f"{node.sub.keyword.upper()} as an ONBUILD trigger"
            raise ParseError(first, f"{what} isn't allowed")
    elif keyword == "healthcheck":
        _healthcheck(node, rest)
    else:  # user, workdir, stopsignal, maintainer
        node.raw = rest
    return node


def _maybe_json(node: Node, rest: str) -> None:
    """The exec form when `rest` is a JSON array of strings, else the shell form."""
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            node.words, node.json = value, True
            return
    node.raw = rest


def _healthcheck(node: Node, rest: str) -> None:
    kind, _, command = rest.partition(" ")
    kind = kind.upper()
    node.raw = kind
    if kind == "NONE":
        if command.strip():
            raise ParseError(node.line, "HEALTHCHECK NONE takes no arguments")
    elif kind == "CMD":
        sub = Node("cmd", node.line, node.end_line, command.strip())
        _maybe_json(sub, command.strip())
        if not sub.json and not sub.raw:
            raise ParseError(node.line, "Missing command after HEALTHCHECK CMD")
        node.sub = sub
    else:
        raise ParseError(node.line, f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')


def _pairs(keyword: str, rest: str, escape: str) -> list[tuple[str, str | None]]:
    """ENV/LABEL `name=value ...` (or the old `name value`), ARG `name[=default] ...`."""
    words = split_words(rest, escape)
    if not words:
        raise errors.InvalidArgument(f"{keyword.upper()} requires at least one argument")
    if keyword == "arg":
        return [(w.partition("=")[0], w.partition("=")[2]) if "=" in w else (w, None) for w in words]
    if "=" not in words[0]:
        parts = _WHITESPACE_RE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise errors.InvalidArgument(f"{keyword.upper()} must have two arguments")
        return [(parts[0], parts[1])]
    pairs: list[tuple[str, str | None]] = []
    for word in words:
        if "=" not in word:
            raise errors.InvalidArgument(
                f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        name, _, value = word.partition("=")
        pairs.append((name, value))
    return pairs


def split_words(rest: str, escape: str = "\\") -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes in the words (Docker's parseWords)."""
    words: list[str] = []
    word = ""
    quote = ""
    started = blank_ok = False
    i = 0
    while i < len(rest):
        ch = rest[i]
        if not started:
            if ch.isspace():
                i += 1
                continue
            started = True
        if not quote:
            if ch.isspace():
                if blank_ok or word:
                    words.append(word)
                word, started, blank_ok = "", False, False
                i += 1
                continue
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == escape:
                if i + 1 == len(rest):
                    break
                word += ch
                i += 1
                ch = rest[i]
            word += ch
        else:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == len(rest):
                    break
                word += ch
                i += 1
                ch = rest[i]
            word += ch
        i += 1
    if started and (blank_ok or word):
        words.append(word)
    return words


def extract_flags(text: str) -> tuple[str, list[str]]:
    """The leading `--name[=value]` words of an instruction (quotes removed) and the rest."""
    flags: list[str] = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if not text.startswith("--", i):
            return text[i:], flags
        word, quote = "", ""
        while i < len(text):
            ch = text[i]
            if not quote and ch.isspace():
                break
            if not quote and ch in "'\"":
                quote = ch
            elif quote and ch == quote:
                quote = ""
            elif ch == "\\" and i + 1 < len(text):
                i += 1
                word += text[i]
            elif ch != "\\":
                word += ch
            i += 1
        if word == "--":
            return text[i:], flags
        flags.append(word)
