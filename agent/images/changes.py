"""Dockerfile change lines (`docker import --change`), applied to an image config.

Supported instructions: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL,
VOLUME and STOPSIGNAL, in the JSON (exec) and shell forms Dockerfiles use.
Variables ($VAR) are not expanded.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from typing import Any

from kran import errors

SUPPORTED = ("CMD", "ENTRYPOINT", "ENV", "WORKDIR", "USER", "EXPOSE", "LABEL", "VOLUME", "STOPSIGNAL")
_PORT_RE = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?", re.IGNORECASE)
_SIGNAL_RE = re.compile(r"(SIG)?[A-Z0-9+-]+|\d+", re.IGNORECASE)


def _json_list(text: str) -> list[str] | None:
    """The exec form `["a", "b"]`, or None if `text` is not a JSON list of strings."""
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _command(text: str) -> list[str]:
    """CMD/ENTRYPOINT: exec form as is, shell form run by /bin/sh -c."""
    exec_form = _json_list(text)
    return exec_form if exec_form is not None else ["/bin/sh", "-c", text]


def _words(keyword: str, text: str) -> list[str]:
    try:
        return shlex.split(text, posix=True)
    except ValueError as exc:
        raise errors.InvalidArgument(f"{keyword} {text}: {exc}") from None


def _pairs(keyword: str, text: str) -> list[tuple[str, str]]:
    """`k=v k2="v 2"`, or the old one-pair form `k some value`."""
    words = _words(keyword, text)
    if not words:
        raise errors.InvalidArgument(f"{keyword} requires at least one argument")
    if "=" not in words[0]:
        key, _, rest = text.strip().partition(" ")
        value = rest.strip()
        if keyword == "ENV" and not value:
            raise errors.InvalidArgument(f"ENV must have two arguments: {text!r}")
        return [(key, " ".join(_words(keyword, value)) if value else "")]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise errors.InvalidArgument(f"{keyword} names a key without a value: {word!r}")
        pairs.append((key, value))
    return pairs


def _ports(text: str) -> list[str]:
    ports = []
    for spec in _words("EXPOSE", text):
        match = _PORT_RE.fullmatch(spec)
        if match is None:
            raise errors.InvalidArgument(f"invalid port in EXPOSE: {spec!r}")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        proto = (match.group(3) or "tcp").lower()
        if not 0 < first <= last <= 65535:
            raise errors.InvalidArgument(f"invalid port range in EXPOSE: {spec!r}")
        ports += [f"{p}/{proto}" for p in range(first, last + 1)]
    if not ports:
        raise errors.InvalidArgument("EXPOSE requires at least one argument")
    return ports


def apply_change(config: dict[str, Any], line: str) -> None:
    """Apply one Dockerfile line to `config` (the "config" object of an image config).

    Raises errors.InvalidArgument for an instruction that is not supported
    or malformed.
    """
    keyword, _, rest = line.strip().partition(" ")
    keyword = keyword.upper()
    rest = rest.strip()
    if keyword not in SUPPORTED:
        raise errors.InvalidArgument(f"{keyword or line!r} is not a valid change command "
                                     f"(supported: {', '.join(SUPPORTED)})")
    if not rest:
        raise errors.InvalidArgument(f"{keyword} requires at least one argument")
    if keyword == "CMD":
        config["Cmd"] = _command(rest)
    elif keyword == "ENTRYPOINT":
        config["Entrypoint"] = _command(rest)
        # As in a Dockerfile, a new entrypoint drops the inherited command.
        config.pop("Cmd", None)
    elif keyword == "ENV":
        env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
        env.update(_pairs(keyword, rest))
        config["Env"] = [f"{k}={v}" for k, v in env.items()]
    elif keyword == "LABEL":
        labels = dict(config.get("Labels") or {})
        labels.update(_pairs(keyword, rest))
        config["Labels"] = labels
    elif keyword == "WORKDIR":
        path = " ".join(_words(keyword, rest))
        config["WorkingDir"] = posixpath.normpath(posixpath.join(config.get("WorkingDir") or "/", path))
    elif keyword == "USER":
        config["User"] = rest
    elif keyword == "EXPOSE":
        exposed = dict(config.get("ExposedPorts") or {})
        exposed.update({port: {} for port in _ports(rest)})
        config["ExposedPorts"] = exposed
    elif keyword == "VOLUME":
        paths = _json_list(rest)
        if paths is None:
            paths = _words(keyword, rest)
        if not paths or any(not p for p in paths):
            raise errors.InvalidArgument(f"VOLUME specified can not be an empty string: {rest!r}")
        volumes = dict(config.get("Volumes") or {})
        volumes.update({p: {} for p in paths})
        config["Volumes"] = volumes
    else:  # STOPSIGNAL
        if not _SIGNAL_RE.fullmatch(rest):
            raise errors.InvalidArgument(f"invalid signal in STOPSIGNAL: {rest!r}")
        config["StopSignal"] = rest


def apply_changes(config: dict[str, Any], lines: list[str]) -> dict[str, Any]:
    """Apply every line in order to a copy of `config` and return it; `config` is not changed."""
    result = json.loads(json.dumps(config))
    for line in lines:
        if line.strip():
            apply_change(result, line)
    return result
