"""Reading a Dockerfile: directives, comments, continuations, and each instruction's form."""

from __future__ import annotations

import pytest

from agent.build.dockerfile import ParseError, extract_flags, parse, split_words


def test_continuations_comments_and_blank_lines_join_into_one_instruction():
    df = parse("FROM busybox\n\n# a comment\nRUN echo a \\\n  # inside\n\n  && echo b\nCMD sh\n")
    assert [n.keyword for n in df.nodes] == ["from", "run", "cmd"]
    run = df.nodes[1]
    assert run.raw == "echo a   && echo b"
    assert (run.line, run.end_line) == (4, 7)
    assert df.nodes[2].line == 8


def test_the_escape_directive_changes_the_continuation_character():
    df = parse("# escape=`\nFROM busybox\nRUN dir c:\\ `\n  && echo done\n")
    assert df.escape == "`"
    assert df.nodes[1].raw == "dir c:\\   && echo done"


def test_directives_count_only_at_the_top():
    df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\n# escape=\\\nRUN a `\n b\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert df.nodes[1].raw == "a  b"
    late = parse("FROM busybox\n# escape=`\nRUN a \\\n b\n")
    assert late.escape == "\\"


def test_a_bad_escape_directive_is_refused():
    with pytest.raises(ParseError, match="invalid escape token"):
        parse("# escape=x\nFROM busybox\n")


def test_exec_and_shell_forms():
    df = parse('FROM busybox\nRUN ["echo", "a b"]\nRUN echo a b\nCMD [not json\nENTRYPOINT []\n')
    exec_run, shell_run, broken, empty = df.nodes[1:]
    assert (exec_run.json, exec_run.words) == (True, ["echo", "a b"])
    assert (shell_run.json, shell_run.raw) == (False, "echo a b")
    assert (broken.json, broken.raw) == (False, "[not json")
    assert (empty.json, empty.words) == (True, [])


def test_name_value_pairs_keep_their_quotes_for_expansion():
    df = parse('FROM busybox\nENV A=1 B="two words" C=x\\ y\nENV OLD some value here\nLABEL "k k"=v\n'
               "ARG ONE TWO=2\n")
    assert df.nodes[1].pairs == [("A", "1"), ("B", '"two words"'), ("C", "x\\ y")]
    assert df.nodes[2].pairs == [("OLD", "some value here")]
    assert df.nodes[3].pairs == [('"k k"', "v")]
    assert df.nodes[4].pairs == [("ONE", None), ("TWO", "2")]


def test_copy_flags_and_words():
    node = parse("FROM busybox\nCOPY --from=build --chown=1:2 a b /dst/\n").nodes[1]
    assert node.flags == ["--from=build", "--chown=1:2"]
    assert node.words == ["a", "b", "/dst/"]
    json_node = parse('FROM busybox\nCOPY ["a b", "/dst"]\n').nodes[1]
    assert json_node.words == ["a b", "/dst"]


def test_onbuild_holds_an_instruction_and_healthcheck_a_command():
    df = parse("FROM busybox\nONBUILD RUN echo hi\nHEALTHCHECK --interval=5s CMD wget -q localhost\n"
               "HEALTHCHECK NONE\n")
    assert df.nodes[1].sub.keyword == "run" and df.nodes[1].sub.raw == "echo hi"
    check = df.nodes[2]
    assert check.flags == ["--interval=5s"] and check.raw == "CMD" and check.sub.raw == "wget -q localhost"
    assert df.nodes[3].raw == "NONE"


@pytest.mark.parametrize("text, line, message", [
    ("FROM busybox\nRUN true\nFORM x\n", 3, "unknown instruction: FORM"),
    ("FROM busybox\nENV\n", 2, "ENV requires at least one argument"),
    ("FROM busybox\nENV A=1 B\n", 2, "can't find = in 'B'"),
    ("FROM busybox\nENV ONLY\n", 2, "ENV must have two arguments"),
    ("FROM busybox\nONBUILD ONBUILD RUN x\n", 2, "isn't allowed"),
    ("FROM busybox\nONBUILD FROM x\n", 2, "FROM as an ONBUILD trigger isn't allowed"),
    ("FROM busybox\nHEALTHCHECK BOGUS x\n", 2, "Unknown type"),
    ("FROM busybox\nRUN a \\\n b\nbad\n", 4, "unknown instruction: BAD"),
    ("FROM busybox\nRUN <<EOF\necho hi\nEOF\n", 2, "heredoc"),
])
def test_parse_errors_name_the_line(text, line, message):
    with pytest.raises(ParseError, match=message) as raised:
        parse(text)
    assert raised.value.line == line
    assert str(raised.value).startswith(f"dockerfile parse error on line {line}: ")


def test_words_split_outside_quotes():
    assert split_words('a "b c" d\\ e \'f g\'') == ["a", '"b c"', "d\\ e", "'f g'"]
    assert split_words('""') == ['""']


def test_flags_stop_at_the_first_word_without_dashes():
    assert extract_flags("--from=a --chown='x y' src dst") == ("src dst", ["--from=a", "--chown=x y"])
    assert extract_flags("-- --notaflag") == (" --notaflag", [])
    assert extract_flags("plain") == ("plain", [])
