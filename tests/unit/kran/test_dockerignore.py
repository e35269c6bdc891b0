""".dockerignore patterns, matched as Docker matches them."""

from __future__ import annotations

import pytest

from kran.dockerignore import Matcher, read_patterns


def matcher(text: str) -> Matcher:
    return Matcher(read_patterns(text))


def test_patterns_are_cleaned_and_comments_skipped():
    assert read_patterns("\ufeff# comment\n\n  *.log  \n/abs\n./rel/../x\n! keep.log\n") == \
        ["*.log", "abs", "x", "!keep.log"]


@pytest.mark.parametrize("pattern, path, excluded", [
    ("*.log", "a.log", True),
    ("*.log", "dir/a.log", False),
    ("*/*.log", "dir/a.log", True),
    ("**/*.log", "a/b/c.log", True),
    ("**/*.log", "c.log", True),
    ("docs/**", "docs/a/b", True),
    ("docs/**", "docsx", False),
    ("build", "build/deep/file", True),
    ("/secret", "secret", True),
    ("secret", "x/secret", False),
    ("file?.txt", "file1.txt", True),
    ("file?.txt", "file10.txt", False),
    ("[a-c].txt", "b.txt", True),
    ("[^a-c].txt", "d.txt", True),
    ("a.b", "axb", False),
    ("\\*.txt", "*.txt", True),
    ("\\*.txt", "a.txt", False),
])
def test_matching(pattern, path, excluded):
    assert matcher(pattern).excluded(path) is excluded


def test_the_last_matching_pattern_decides():
    m = matcher("*.md\n!README.md\nREADME.md\n!docs\ndocs/private\n")
    assert m.excluded("CHANGES.md") and m.excluded("README.md")
    assert not m.excluded("docs/a.md") and m.excluded("docs/private/key")
    assert m.has_exclusions


def test_an_exception_brings_back_a_path_below_an_excluded_directory():
    m = matcher("vendor\n!vendor/keep\n")
    assert m.excluded("vendor/other") and not m.excluded("vendor/keep")


def test_a_bad_pattern_is_refused():
    with pytest.raises(ValueError, match="invalid pattern"):
        matcher("[")
