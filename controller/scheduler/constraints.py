"""Placement constraints, Swarm's syntax: `node.hostname==h2`, `node.labels.zone!=a`.

A constraint is `KEY==VALUE` or `KEY!=VALUE`. Keys name a fact of a node:

    node.id, node.hostname, node.role (always "worker"), node.platform.os,
    node.platform.arch, node.labels.<name> (labels set with `node update`),
    engine.labels.<name> (labels the agent was started with)

Values compare case-insensitively, as swarmkit's do; a label the node does
not have reads as the empty string, so `node.labels.zone!=a` also holds on
nodes without a zone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from controller.nodes import NodeState
from kran import errors

OPERATORS = ("==", "!=")
_FIXED_KEYS = ("node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch")
_LABEL_PREFIXES = ("node.labels.", "engine.labels.")
_KEY = re.compile(r"[A-Za-z0-9_.-]+")
# Architecture names as agents (uname) and as users (Go, OCI) spell them.
_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
                 "i386": "386"}
KNOWN_KEYS = ", ".join(_FIXED_KEYS) + ", node.labels.<name>, engine.labels.<name>"


def _arch(value: str) -> str:
    lowered = value.lower()
    return _ARCH_ALIASES.get(lowered, lowered)


@dataclass(frozen=True)
class Constraint:
    """One parsed constraint."""

    key: str
    operator: str     # "==" | "!="
    value: str
    text: str         # as the user wrote it, for messages

    def matches(self, node: NodeState) -> bool:
        """Whether node satisfies this constraint."""
        actual = node_fact(node, self.key)
        if self.key == "node.platform.arch":
            equal = _arch(actual) == _arch(self.value)
        else:
            equal = actual.lower() == self.value.lower()
        return equal if self.operator == "==" else not equal


def node_fact(node: NodeState, key: str) -> str:
    """The value of a constraint key on node ("" for a label it does not have)."""
    value = node.record.value
    description = value.get("description", {})
    if key == "node.id":
        return node.id
    if key == "node.hostname":
        return node.hostname
    if key == "node.role":
        return "worker"
    if key == "node.platform.os":
        return str(description.get("os", ""))
    if key == "node.platform.arch":
        return str(description.get("architecture", ""))
    if key.startswith("node.labels."):
        return str(value.get("labels", {}).get(key[len("node.labels."):], ""))
    return str(description.get("labels", {}).get(key[len("engine.labels."):], ""))


def parse(text: str) -> Constraint:
    """Parse one constraint; errors.InvalidArgument says what is wrong with it."""
    found = [(text.find(op), op) for op in OPERATORS if op in text]
    if len(found) != 1 or text.count(found[0][1]) != 1:
        raise errors.InvalidArgument(
            f"invalid constraint {text!r}: expected KEY==VALUE or KEY!=VALUE")
    position, operator = found[0]
    key = text[:position].strip()
    value = text[position + len(operator):].strip()
    if not key or not _KEY.fullmatch(key):
        raise errors.InvalidArgument(f"invalid constraint {text!r}: no key before {operator}")
    if key not in _FIXED_KEYS and not any(
            key.startswith(prefix) and len(key) > len(prefix) for prefix in _LABEL_PREFIXES):
        raise errors.InvalidArgument(
            f"invalid constraint {text!r}: unknown key {key!r} (use {KNOWN_KEYS})")
    if not value and not key.startswith(_LABEL_PREFIXES):
        raise errors.InvalidArgument(f"invalid constraint {text!r}: no value after {operator}")
    return Constraint(key, operator, value, f"{key}{operator}{value}")


def parse_all(texts: Iterable[str]) -> tuple[Constraint, ...]:
    """Parse every constraint (the first bad one raises errors.InvalidArgument)."""
    return tuple(parse(text) for text in texts)
