"""Each instruction checked: flags, argument counts and forms, HEALTHCHECK durations."""

from __future__ import annotations

import pytest

from agent.build.dockerfile import ParseError, parse
from agent.build.instructions import (Command, Copy, From, Healthcheck, Onbuild, parse_duration,
                                      parse_instruction)


def one(line: str):
    return parse_instruction(parse(f"FROM busybox\n{line}\n").nodes[-1])


def test_from_with_a_stage_name_and_platform():
    instruction = parse_instruction(parse("FROM --platform=linux/amd64 busybox AS Build\n").nodes[0])
    assert isinstance(instruction, From)
    assert (instruction.image, instruction.name, instruction.platform) == ("busybox", "build", "linux/amd64")


def test_copy_takes_sources_destination_and_its_flags():
    copy = one("COPY --from=0 --chown=app:app --chmod=640 a b /dst/")
    assert isinstance(copy, Copy)
    assert (copy.sources, copy.dest, copy.source_stage, copy.chown, copy.chmod) == \
        (["a", "b"], "/dst/", "0", "app:app", "640")


def test_run_shell_and_exec_forms():
    shell, exec_form = one("RUN echo hi"), one('RUN ["echo", "hi"]')
    assert isinstance(shell, Command) and (shell.exec_form, shell.text) == (False, "echo hi")
    assert (exec_form.exec_form, exec_form.args) == (True, ["echo", "hi"])


def test_healthcheck_durations_and_retries():
    check = one("HEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD [\"true\"]")
    assert isinstance(check, Healthcheck)
    assert check.test == ["CMD", "true"]
    assert (check.interval, check.timeout, check.retries) == (90_000_000_000, 500_000_000, 3)
    assert one("HEALTHCHECK CMD curl -f x").test == ["CMD-SHELL", "curl -f x"]
    assert one("HEALTHCHECK NONE").test == ["NONE"]


def test_onbuild_keeps_the_trigger_as_written():
    trigger = one("onbuild RUN echo $X")
    assert isinstance(trigger, Onbuild) and trigger.trigger == "RUN echo $X"


@pytest.mark.parametrize("line, message", [
    ("COPY onlyone", "COPY requires at least two arguments"),
    ("ADD --from=x a b", "Unknown flag: from"),
    ("COPY --bogus=1 a b", "Unknown flag: bogus"),
    ("COPY --chown=1 --chown=2 a b", "Duplicate flag specified: chown"),
    ("COPY --chown a b", "Missing a value on flag: chown"),
    ("COPY --chmod=abc a b", "invalid chmod parameter"),
    ("COPY --link a b", "COPY --link needs BuildKit"),
    ("RUN --mount=type=cache,target=/x true", "RUN --mount needs BuildKit"),
    ("RUN", "RUN requires at least one argument"),
    ("SHELL /bin/bash -c", "SHELL requires the arguments to be in JSON form"),
    ("WORKDIR", "WORKDIR requires exactly one argument"),
    ("EXPOSE", "EXPOSE requires at least one argument"),
    ("HEALTHCHECK --interval=5x CMD true", "invalid duration"),
    ("HEALTHCHECK --timeout=10us CMD true", "cannot be less than 1ms"),
    ("HEALTHCHECK --retries=-1 CMD true", "cannot be negative"),
    ("HEALTHCHECK --interval=1s NONE", "takes no options"),
    ("ONBUILD COPY --bogus=1 a b", "Unknown flag: bogus"),
])
def test_refused_instructions_name_their_line(line, message):
    with pytest.raises(ParseError, match=message) as raised:
        one(line)
    assert raised.value.line == 2


def test_bad_from_lines():
    with pytest.raises(ParseError, match="FROM requires either one or three arguments"):
        parse_instruction(parse("FROM a b\n").nodes[0])
    with pytest.raises(ParseError, match="invalid name for build stage"):
        parse_instruction(parse("FROM a AS 1bad\n").nodes[0])


def test_go_durations():
    assert parse_duration("1h2m3s") == 3_723_000_000_000
    assert parse_duration("1.5s") == 1_500_000_000
    assert parse_duration("0") == 0
    with pytest.raises(ValueError):
        parse_duration("5")
