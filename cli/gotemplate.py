"""The part of Go's text/template that `--format` needs, over JSON-like data.

Supported: text, `{{.}}`, field paths (`{{.Config.Env}}`), string and number
literals, pipelines (`{{.Id | lower}}`), `{{if P}}...{{else}}...{{end}}`,
`{{range P}}...{{end}}` (dot is each element), the trim markers `{{-`/`-}}`,
and docker's functions json, index, join, len, lower, upper, title, split,
println. Values print as Go's %v does; a missing key prints `<no value>`.
There is no maintained Python implementation of Go templates to use instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_ACTION = re.compile(r"{{(-\s)?(.*?)(\s-)?}}", re.S)
_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(\|)|([^\s|]+))')
_NO_VALUE = "<no value>"


class TemplateError(Exception):
    """The format string cannot be parsed or executed."""


def go_str(value: Any) -> str:
    """A value as Go's fmt %v prints decoded JSON."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        try:
            value = value[key] if isinstance(value, dict) else value[int(key)]
        except (KeyError, IndexError, ValueError, TypeError):
            if isinstance(value, dict):
                return None
            raise TemplateError(f"error calling index: cannot index {go_str(value)} "
                                f"with {key!r}") from None
    return value


def _join(values: Any, sep: str) -> str:
    return sep.join(go_str(v) for v in values or [])


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "index": _index,
    "join": _join,
    "len": lambda v: len(v or []),
    "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(),
    "title": lambda s: go_str(s).title(),
    "split": lambda s, sep: go_str(s).split(sep),
    "println": lambda *a: " ".join(go_str(v) for v in a) + "\n",
}


class _Missing:
    """A key absent from a map: prints as `<no value>`, is false."""

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()


def _parse(text: str) -> list[Any]:
    """The template as a tree: strings and ("expr", tokens) / ("if"|"range", ...)."""
    root: list[Any] = []
    stack: list[tuple[str, list[Any], Any]] = [("root", root, None)]
    pos = 0
    pending_trim = False
    for match in _ACTION.finditer(text):
        chunk = text[pos:match.start()]
        if pending_trim:
            chunk = chunk.lstrip()
        if match.group(1):
            chunk = chunk.rstrip()
        if chunk:
            stack[-1][1].append(chunk)
        pending_trim = bool(match.group(3))
        pos = match.end()
        tokens = _tokens(match.group(2))
        if not tokens:
            raise TemplateError("missing value for command")
        body = stack[-1][1]
        word = tokens[0]
        if word in ("if", "range"):
            node = {"kind": word, "pipe": tokens[1:], "then": [], "else": []}
            body.append(node)
            stack.append((word, node["then"], node))
        elif word == "else":
            kind, _, node = stack[-1]
            if kind not in ("if", "range"):
                raise TemplateError("unexpected {{else}}")
            stack[-1] = ("else", node["else"], node)
        elif word == "end":
            if len(stack) == 1:
                raise TemplateError("unexpected {{end}}")
            stack.pop()
        else:
            body.append({"kind": "expr", "pipe": tokens})
    if "{{" in text[pos:]:
        raise TemplateError("unclosed action")
    if len(stack) > 1:
        raise TemplateError("unexpected EOF")
    tail = text[pos:]
    if pending_trim:
        tail = tail.lstrip()
    if tail:
        root.append(tail)
    return root


def _tokens(action: str) -> list[str]:
    tokens = []
    pos = 0
    action = action.strip()
    while pos < len(action):
        match = _TOKEN.match(action, pos)
        if not match or match.end() == pos:
            break
        tokens.append(match.group(0).strip())
        pos = match.end()
    return tokens


def _field(dot: Any, path: str) -> Any:
    value = dot
    for name in path.split(".")[1:]:
        if not name:
            continue
        if isinstance(value, dict):
            value = value.get(name, MISSING)
        elif value is MISSING or value is None:
            return MISSING
        else:
            raise TemplateError(f"can't evaluate field {name} in type {type(value).__name__}")
    return value


def _operand(token: str, dot: Any) -> Any:
    if token.startswith("."):
        return _field(dot, token)
    if token.startswith('"'):
        return json.loads(token)
    if token.startswith("`"):
        return token[1:-1]
    if token in ("true", "false"):
        return token == "true"
    if token == "nil":
        return None
    try:
        return int(token)
    except ValueError:
        pass
    if token in FUNCTIONS:
        return FUNCTIONS[token]
    raise TemplateError(f'function "{token}" not defined')


def _pipeline(tokens: list[str], dot: Any) -> Any:
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token == "|":
            commands.append([])
        else:
            commands[-1].append(token)
    result: Any = MISSING
    for index, command in enumerate(commands):
        if not command:
            raise TemplateError("missing command in pipeline")
        args = [_operand(t, dot) for t in command]
        if index:
            args.append(result)
        head = args[0]
        if callable(head) and command[0] in FUNCTIONS:
            try:
                result = head(*[None if a is MISSING else a for a in args[1:]])
            except TypeError as exc:
                raise TemplateError(f"error calling {command[0]}: {exc}") from None
        elif len(args) == 1:
            result = head
        else:
            raise TemplateError(f"can't give argument to non-function {command[0]}")
    return result


def _render(nodes: list[Any], dot: Any, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif node["kind"] == "expr":
            value = _pipeline(node["pipe"], dot)
            out.append(_NO_VALUE if value is MISSING else go_str(value))
        elif node["kind"] == "if":
            branch = node["then"] if _pipeline(node["pipe"], dot) else node["else"]
            _render(branch, dot, out)
        else:
            items = _pipeline(node["pipe"], dot)
            if isinstance(items, dict):
                items = [items[k] for k in sorted(items)]
            if items:
                for item in items:
                    _render(node["then"], item, out)
            else:
                _render(node["else"], dot, out)


class Template:
    """A parsed format string; `render(value)` executes it with dot = value."""

    def __init__(self, text: str):
        self._nodes = _parse(text)

    def render(self, value: Any) -> str:
        """The template's output for value."""
        out: list[str] = []
        _render(self._nodes, value, out)
        return "".join(out)
