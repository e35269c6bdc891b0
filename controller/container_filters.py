"""Docker's `ps` selection over Container messages: all, limit and filters.

Filters (each key may hold several values): status, name (a regular
expression searched in the name, as Docker does), label (K or K=V; every
value must match), ancestor (an image reference or id prefix), node (id,
id prefix or hostname), id (prefix) and exited (exit code). Values of one
key match if any of them does (label: if all do); keys combine with AND.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from kran import errors, reference
from kran.api.v1 import containers_pb2

Container = containers_pb2.Container
Matcher = Callable[[Container], bool]

STATUSES = frozenset({"created", "restarting", "running", "removing", "paused", "exited", "dead"})
# Docker's `ps` without -a shows the containers whose process is there.
SHOWN_BY_DEFAULT = frozenset({"running", "paused", "restarting"})


def _name(values: Sequence[str]) -> Matcher:
    patterns = []
    for value in values:
        try:
            patterns.append(re.compile(value))
        except re.error:
            patterns.append(re.compile(re.escape(value)))
    # Docker matches against the name with its leading slash.
    return lambda c: any(p.search("/" + c.name) for p in patterns)


def _label(values: Sequence[str]) -> Matcher:
    wanted = [value.partition("=") for value in values]
    return lambda c: all(key in c.config.labels and (not eq or c.config.labels[key] == val)
                         for key, eq, val in wanted)


def _normalised(text: str) -> str | None:
    try:
        return reference.parse(text).full()
    except errors.InvalidArgument:
        return None


def _ancestor(values: Sequence[str]) -> Matcher:
    refs = {ref for ref in map(_normalised, values) if ref}
    prefixes = [p for p in map(reference.id_prefix, values) if p]

    def match(c: Container) -> bool:
        image_hex = c.image_id.removeprefix("sha256:")
        return (_normalised(c.config.image) in refs
                or any(image_hex.startswith(p) for p in prefixes)
                or c.config.image in values)
    return match


def _status(values: Sequence[str]) -> Matcher:
    for value in values:
        if value not in STATUSES:
            raise errors.InvalidArgument(f"invalid filter 'status={value}'")
    wanted = set(values)
    return lambda c: c.state.status in wanted


def _exited(values: Sequence[str]) -> Matcher:
    codes = set()
    for value in values:
        try:
            codes.add(int(value))
        except ValueError:
            raise errors.InvalidArgument(f"invalid filter 'exited={value}'") from None
    return lambda c: c.state.status == "exited" and c.state.exit_code in codes


def _node(values: Sequence[str]) -> Matcher:
    return lambda c: any(v in (c.node_id, c.node_name) or c.node_id.startswith(v) for v in values)


def _id(values: Sequence[str]) -> Matcher:
    return lambda c: any(c.id.startswith(v) for v in values)


_MATCHERS: dict[str, Callable[[Sequence[str]], Matcher]] = {
    "status": _status, "name": _name, "label": _label, "ancestor": _ancestor,
    "node": _node, "id": _id, "exited": _exited,
}


def matchers(filters: Mapping[str, Sequence[str]]) -> list[Matcher]:
    """One matcher per filter key; InvalidArgument for an unknown key or a bad value."""
    found = []
    for key, values in filters.items():
        make = _MATCHERS.get(key)
        if make is None:
            raise errors.InvalidArgument(f"invalid filter '{key}'")
        if values:
            found.append(make(list(values)))
    return found


def newest_first(container: Container) -> tuple[int, int, str]:
    """Sort key putting the most recently created first."""
    return -container.created.seconds, -container.created.nanos, container.id


def select(containers: Sequence[Container], show_all: bool, limit: int,
           filters: Mapping[str, Sequence[str]]) -> list[Container]:
    """The containers `ps` shows, newest first.

    Without `show_all` only running, paused and restarting containers are
    shown; a status filter or a limit (the newest N, of any status) implies
    `show_all`, as with Docker.
    """
    checks = matchers(filters)
    everything = show_all or bool(filters.get("status")) or limit > 0
    chosen = [c for c in containers
              if (everything or c.state.status in SHOWN_BY_DEFAULT)
              and all_match(checks, c)]
    chosen.sort(key=newest_first)
    return chosen[:limit] if limit > 0 else chosen


def all_match(checks: list[Matcher], container: Container) -> bool:
    """Whether container passes every matcher."""
    return all(check(container) for check in checks)
