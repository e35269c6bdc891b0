"""Stages: meta ARGs, targets, and which stages a target needs."""

from __future__ import annotations

import pytest

from agent.build.dockerfile import ParseError, parse
from agent.build.stages import base_names, copy_source_stage, meta_values, needed, plan
from kran import errors

MULTI = """\
ARG BASE=busybox
ARG TAG=${BASE}-x
FROM $BASE AS deps
RUN echo deps
FROM ${BASE} AS unused
RUN echo unused
FROM deps AS build
COPY --from=0 /a /a
FROM scratch AS final
COPY --from=build /a /a
"""


def test_meta_args_take_build_args_then_defaults():
    p = plan(parse(MULTI))
    assert meta_values(p, {}) == {"BASE": "busybox", "TAG": "busybox-x"}
    assert meta_values(p, {"BASE": "alpine"}) == {"BASE": "alpine", "TAG": "alpine-x"}
    assert base_names(p, meta_values(p, {})) == ["busybox", "busybox", "deps", "scratch"]


def test_the_target_needs_the_stages_it_starts_from_and_copies_from():
    p = plan(parse(MULTI))
    bases = base_names(p, meta_values(p, {}))
    assert [s.name for s in needed(p, p.target(""), bases)] == ["deps", "build", "final"]
    assert [s.name for s in needed(p, p.target("BUILD"), bases)] == ["deps", "build"]
    assert [s.name for s in needed(p, p.target("unused"), bases)] == ["unused"]


def test_an_unknown_target_is_refused():
    with pytest.raises(errors.InvalidArgument, match="failed to reach build target nope in Dockerfile"):
        plan(parse(MULTI)).target("nope")


def test_copy_from_names_an_earlier_stage_or_an_image():
    p = plan(parse(MULTI))
    final = p.stages[3]
    assert copy_source_stage(p, final, "build").name == "build"
    assert copy_source_stage(p, final, "0").name == "deps"
    assert copy_source_stage(p, final, "busybox") is None
    with pytest.raises(errors.InvalidArgument, match="refers to current or future build stage"):
        copy_source_stage(p, p.stages[1], "2")


@pytest.mark.parametrize("text, message", [
    ("", "cannot be empty"),
    ("# only a comment\n", "cannot be empty"),
    ("RUN true\nFROM busybox\n", "no build stage in current context"),
    ("ARG X\n", "needs a FROM"),
    ("FROM a AS x\nFROM b AS X\n", 'duplicate stage name "x"'),
])
def test_dockerfiles_without_a_usable_stage_are_refused(text, message):
    with pytest.raises(errors.InvalidArgument, match=message):
        plan(parse(text))


def test_an_instruction_before_from_names_its_line():
    with pytest.raises(ParseError) as raised:
        plan(parse("ARG X\n\nENV A=1\nFROM busybox\n"))
    assert raised.value.line == 3
