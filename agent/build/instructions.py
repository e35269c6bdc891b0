"""Each Dockerfile instruction checked and typed: its flags, the number and form of its arguments.

What Docker's instructions package does after parsing: unknown or repeated
flags, missing arguments, a SHELL not in JSON form, a bad stage name and
bad HEALTHCHECK durations are refused here, with the instruction's line,
before anything is built. Values keep their variables and quotes; the
build expands them with the variables in effect at that step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.build.dockerfile import Node, ParseError

_STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9\-_.]*$", re.IGNORECASE)
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
          "h": 3_600_000_000_000}
_BUILDKIT_ONLY = {"mount", "network", "security", "link", "parents", "exclude", "checksum", "keep-git-dir"}


@dataclass
class Instruction:
    """An instruction and the node it was read from."""

    node: Node

    @property
    def keyword(self) -> str:
        """The instruction in upper case: "RUN", "COPY", ..."""
        return self.node.keyword.upper()

    @property
    def line(self) -> int:
        return self.node.line

    def error(self, message: str) -> ParseError:
        """A ParseError on this instruction's line."""
        return ParseError(self.node.line, message)


@dataclass
class From(Instruction):
    image: str = ""
    name: str = ""
    platform: str = ""


@dataclass
class Command(Instruction):
    """RUN, CMD, ENTRYPOINT or SHELL: an exec form (`args`) or a shell form (`text`)."""

    args: list[str] = field(default_factory=list)
    text: str = ""
    exec_form: bool = False


@dataclass
class Copy(Instruction):
    """COPY or ADD."""

    sources: list[str] = field(default_factory=list)
    dest: str = ""
    source_stage: str = ""
    chown: str = ""
    chmod: str = ""


@dataclass
class Pairs(Instruction):
    """ENV, LABEL or ARG: names and values (None: an ARG without default)."""

    pairs: list[tuple[str, str | None]] = field(default_factory=list)


@dataclass
class Value(Instruction):
    """USER, WORKDIR, STOPSIGNAL or MAINTAINER: one string."""

    value: str = ""


@dataclass
class Words(Instruction):
    """EXPOSE or VOLUME."""

    words: list[str] = field(default_factory=list)


@dataclass
class Healthcheck(Instruction):
    """HEALTHCHECK NONE (test ["NONE"]) or CMD, with durations in nanoseconds."""

    test: list[str] = field(default_factory=list)
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass
class Onbuild(Instruction):
    """ONBUILD: the trigger as written, run when a later build starts FROM the image."""

    trigger: str = ""


def _flags(node: Node, allowed: dict[str, str]) -> dict[str, str]:
    """The node's flags by name; `allowed` maps each name to "string", "bool" or "duration"."""
    found: dict[str, str] = {}
    for flag in node.flags:
        name, sep, value = flag.removeprefix("--").partition("=")
        if name not in allowed:
            if name in _BUILDKIT_ONLY:
                raise ParseError(node.line, f"{node.keyword.upper()} --{name} needs BuildKit; "
                                            "kran's builder does not support it")
            raise ParseError(node.line, f"Unknown flag: {name}")
        if name in found:
            raise ParseError(node.line, f"Duplicate flag specified: {name}")
        if allowed[name] == "bool":
            if sep and value.lower() not in ("true", "false"):
                raise ParseError(node.line, f"expecting boolean value for flag {name}, not: {value}")
            found[name] = value.lower() if sep else "true"
        elif not sep:
            raise ParseError(node.line, f"Missing a value on flag: {name}")
        else:
            found[name] = value
    return found


def parse_duration(text: str) -> int:
    """A Go duration ("30s", "1m30s", "500ms") in nanoseconds; ValueError if it is none."""
    if text in ("0", ""):
        return 0
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            raise ValueError(text)
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(text)
    return int(total)


def _duration(node: Node, flags: dict[str, str], name: str) -> int:
    try:
        value = parse_duration(flags.get(name, "0"))
    except ValueError:
        raise ParseError(node.line, f'time: invalid duration "{flags[name]}"') from None
    if 0 < value < 1_000_000:
        raise ParseError(node.line, f"{name.replace('-', ' ').capitalize()} \"{flags[name]}\" cannot be "
                                    "less than 1ms")
    return value


def _command(node: Node, cls: type = Command) -> Command:
    return cls(node, args=list(node.words), text=node.raw, exec_form=node.json)


def parse_instruction(node: Node) -> Instruction:
    """The typed instruction for a node; ParseError (with the line) for what Docker refuses."""
    keyword = node.keyword
    upper = keyword.upper()
    if keyword == "from":
        flags = _flags(node, {"platform": "string"})
        words = node.words
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise ParseError(node.line, "FROM requires either one or three arguments")
        name = words[2] if len(words) == 3 else ""
        if name and not _STAGE_NAME_RE.match(name):
            raise ParseError(node.line, f'invalid name for build stage: "{name}", name can\'t start with a '
                                        "number or contain symbols")
        return From(node, image=words[0], name=name.lower(), platform=flags.get("platform", ""))
    if keyword in ("run", "cmd", "entrypoint", "shell"):
        _flags(node, {})
        if keyword == "shell" and not node.json:
            raise ParseError(node.line, "SHELL requires the arguments to be in JSON form")
        if keyword in ("run", "shell") and not node.words and not node.raw:
            raise ParseError(node.line, f"{upper} requires at least one argument")
        return _command(node)
    if keyword in ("copy", "add"):
        allowed = {"chown": "string", "chmod": "string"}
        if keyword == "copy":
            allowed["from"] = "string"
        flags = _flags(node, allowed)
        if len(node.words) < 2:
            raise ParseError(node.line, f"{upper} requires at least two arguments, but only one was provided. "
                                        "Destination could not be determined.")
        chmod = flags.get("chmod", "")
        if chmod and not re.fullmatch(r"[0-7]{3,4}", chmod):
            raise ParseError(node.line, f"invalid chmod parameter: {chmod!r}: expected an octal mode")
        return Copy(node, sources=node.words[:-1], dest=node.words[-1], source_stage=flags.get("from", ""),
                    chown=flags.get("chown", ""), chmod=chmod)
    if keyword in ("env", "label", "arg"):
        _flags(node, {})
        for name, _ in node.pairs:
            if not name:
                raise ParseError(node.line, f"{upper} names can not be blank")
        return Pairs(node, pairs=list(node.pairs))
    if keyword in ("user", "workdir", "stopsignal", "maintainer"):
        _flags(node, {})
        if not node.raw:
            raise ParseError(node.line, f"{upper} requires exactly one argument")
        return Value(node, value=node.raw)
    if keyword in ("expose", "volume"):
        _flags(node, {})
        if not node.words:
            raise ParseError(node.line, f"{upper} requires at least one argument")
        return Words(node, words=list(node.words))
    if keyword == "healthcheck":
        return _healthcheck(node)
    assert keyword == "onbuild" and node.sub is not None
    parse_instruction(node.sub)
    trigger = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original)
    return Onbuild(node, trigger=trigger)


def _healthcheck(node: Node) -> Healthcheck:
    flags = _flags(node, {"interval": "duration", "timeout": "duration", "start-period": "duration",
                          "start-interval": "duration", "retries": "string"})
    if node.raw == "NONE":
        if flags:
            raise ParseError(node.line, "HEALTHCHECK NONE takes no options")
        return Healthcheck(node, test=["NONE"])
    assert node.sub is not None
    test = ["CMD", *node.sub.words] if node.sub.json else ["CMD-SHELL", node.sub.raw]
    retries = flags.get("retries", "0")
    if not re.fullmatch(r"-?\d+", retries):
        raise ParseError(node.line, f'strconv.ParseInt: parsing "{retries}": invalid syntax')
    if int(retries) < 0:
        raise ParseError(node.line, f"--retries cannot be negative ({retries})")
    return Healthcheck(node, test=test, interval=_duration(node, flags, "interval"),
                       timeout=_duration(node, flags, "timeout"),
                       start_period=_duration(node, flags, "start-period"),
                       start_interval=_duration(node, flags, "start-interval"), retries=int(retries))
