"""Constraint parsing and matching."""

from __future__ import annotations

import pytest

from controller.scheduler.constraints import Constraint, parse, parse_all
from kran import errors
from tests.unit.controller.scheduler.nodes import state

NODE = state("h2", labels={"zone": "a", "ssd": ""}, engine={"gpu": "yes"})


@pytest.mark.parametrize("text, key, operator, value", [
    ("node.hostname==h2", "node.hostname", "==", "h2"),
    (" node.labels.zone != a ", "node.labels.zone", "!=", "a"),
    ("node.id==abc", "node.id", "==", "abc"),
    ("engine.labels.gpu==yes", "engine.labels.gpu", "==", "yes"),
    ("node.labels.ssd==", "node.labels.ssd", "==", ""),
])
def test_parse(text, key, operator, value):
    parsed = parse(text)
    assert (parsed.key, parsed.operator, parsed.value) == (key, operator, value)
    assert parsed.text == f"{key}{operator}{value}"


@pytest.mark.parametrize("text, message", [
    ("node.hostname=h2", "expected KEY==VALUE or KEY!=VALUE"),
    ("node.hostname", "expected KEY==VALUE or KEY!=VALUE"),
    ("a==b==c", "expected KEY==VALUE or KEY!=VALUE"),
    ("node.hostname!==h2", "expected KEY==VALUE or KEY!=VALUE"),
    ("==h2", "no key before =="),
    ("node host==h2", "no key before =="),
    ("node.zone==a", "unknown key 'node.zone'"),
    ("node.labels.==a", "unknown key 'node.labels.'"),
    ("node.hostname==", "no value after =="),
])
def test_parse_refuses(text, message):
    with pytest.raises(errors.InvalidArgument, match=f"invalid constraint {text!r}.*{message}"):
        parse(text)


@pytest.mark.parametrize("text, matches", [
    ("node.hostname==h2", True), ("node.hostname==H2", True), ("node.hostname!=h2", False),
    ("node.hostname==h1", False), (f"node.id=={NODE.id}", True),
    ("node.labels.zone==a", True), ("node.labels.zone!=a", False), ("node.labels.zone!=b", True),
    ("node.labels.rack!=x", True),    # a missing label reads as ""
    ("node.labels.rack==x", False), ("node.labels.ssd==", True),
    ("engine.labels.gpu==yes", True), ("engine.labels.gpu==no", False),
    ("node.platform.os==linux", True), ("node.platform.arch==x86_64", True),
    ("node.platform.arch==amd64", True), ("node.platform.arch==arm64", False),
    ("node.role==worker", True), ("node.role==manager", False),
])
def test_matches(text, matches):
    assert parse(text).matches(NODE) is matches


def test_parse_all_stops_at_the_first_bad_one():
    assert parse_all([]) == ()
    assert parse_all(["node.role==worker"]) == (Constraint("node.role", "==", "worker",
                                                           "node.role==worker"),)
    with pytest.raises(errors.InvalidArgument, match="'bad'"):
        parse_all(["node.role==worker", "bad"])
