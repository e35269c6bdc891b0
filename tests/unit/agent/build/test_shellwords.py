"""Variable substitution as Docker's shell lexer does it."""

from __future__ import annotations

import pytest

from agent.build.shellwords import process_word, process_words
from kran import errors

ENV = {"NAME": "kran", "EMPTY": "", "UNSET": None, "SPACED": "a  b"}


@pytest.mark.parametrize("word, expected", [
    ("$NAME", "kran"),
    ("${NAME}", "kran"),
    ("pre-${NAME}-post", "pre-kran-post"),
    ("$NAME.txt", "kran.txt"),
    ("$MISSING", ""),
    ("${MISSING:-dflt}", "dflt"),
    ("${EMPTY:-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""),
    ("${UNSET-dflt}", "dflt"),
    ("${NAME:-dflt}", "kran"),
    ("${NAME:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${MISSING+alt}", ""),
    ("${MISSING:-${NAME}}", "kran"),
    ("'$NAME'", "$NAME"),
    ('"$NAME"', "kran"),
    ('"a b"', "a b"),
    ("\\$NAME", "$NAME"),
    ('"\\$NAME"', "$NAME"),
    ('"a\\b"', "a\\b"),
    ('"say \\"hi\\""', 'say "hi"'),
    ("a\\ b", "a b"),
    ("$", "$"),
    ("a$ b", "a$ b"),
    ("$1", ""),
])
def test_words_expand_as_in_docker(word, expected):
    assert process_word(word, ENV) == expected


def test_the_escape_character_can_be_a_backtick():
    assert process_word("`$NAME", ENV, "`") == "$NAME"
    assert process_word("C:\\path", ENV, "`") == "C:\\path"


def test_words_split_on_unquoted_whitespace_and_on_whitespace_a_variable_brings():
    assert process_words("80 443/tcp", ENV) == ["80", "443/tcp"]
    assert process_words('"a b" c', ENV) == ["a b", "c"]
    assert process_words("$SPACED", ENV) == ["a", "b"]
    assert process_words('"$SPACED"', ENV) == ["a  b"]


@pytest.mark.parametrize("word, message", [
    ("${MISSING?must be set}", "MISSING: must be set"),
    ("${UNSET:?}", "UNSET: is not allowed to be unset"),
    ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
    ("${NAME", "syntax error: missing '}'"),
    ("${:x}", "bad substitution"),
    ("${NAME/x}", "unsupported modifier (/) in substitution"),
    ("'open", "matching single-quote"),
    ('"open', "matching double-quote"),
])
def test_bad_substitutions_are_refused(word, message):
    with pytest.raises(errors.InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        process_word(word, ENV)


def test_a_required_variable_that_is_set_gives_its_value():
    assert process_word("${NAME:?}", ENV) == "kran"
