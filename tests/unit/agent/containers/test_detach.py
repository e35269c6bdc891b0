"""Detach-key parsing (Docker's syntax) and the stream matcher."""

import pytest

from agent.containers.detach import DEFAULT_DETACH_KEYS, DetachMatcher, parse_detach_keys
from kran import errors


@pytest.mark.parametrize("spec, expected", [
    ("ctrl-p,ctrl-q", b"\x10\x11"),
    ("", b"\x10\x11"),
    ("a", b"a"),
    ("a,ctrl-a,b", b"a\x01b"),
    ("ctrl-@", b"\x00"),
    ("ctrl-z", b"\x1a"),
    ("ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", b"\x1b\x1c\x1d\x1e\x1f"),
    (",", None),
    ("ctrl-a,,", None),
])
def test_parse_detach_keys(spec, expected):
    if expected is None:
        with pytest.raises(errors.InvalidArgument):
            parse_detach_keys(spec)
    else:
        assert parse_detach_keys(spec) == expected


@pytest.mark.parametrize("spec", ["ctrl-", "ctrl-A", "shift-a", "ab", "ctrl-p,,ctrl-q", "é", "ctrl-1", "ctrl-?"])
def test_invalid_detach_keys_name_the_spec(spec):
    with pytest.raises(errors.InvalidArgument) as caught:
        parse_detach_keys(spec)
    assert str(caught.value) == f"Invalid detach keys ({spec}) provided"


def test_default_is_ctrl_p_ctrl_q():
    assert parse_detach_keys(DEFAULT_DETACH_KEYS) == b"\x10\x11"


def test_matcher_forwards_plain_data():
    matcher = DetachMatcher(b"\x10\x11")
    assert matcher.feed(b"hello\n") == (b"hello\n", False)


def test_matcher_detaches_and_drops_the_rest():
    matcher = DetachMatcher(b"\x10\x11")
    assert matcher.feed(b"ab\x10\x11cd") == (b"ab", True)


def test_matcher_holds_a_partial_match_across_pieces():
    matcher = DetachMatcher(b"\x10\x11")
    assert matcher.feed(b"x\x10") == (b"x", False)
    assert matcher.feed(b"\x11") == (b"", True)


def test_matcher_releases_a_partial_match_that_fails():
    matcher = DetachMatcher(b"\x10\x11")
    assert matcher.feed(b"\x10") == (b"", False)
    assert matcher.feed(b"y") == (b"\x10y", False)


def test_matcher_restarts_inside_a_failed_match():
    matcher = DetachMatcher(b"\x10\x11")
    assert matcher.feed(b"\x10\x10\x11") == (b"\x10", True)
    matcher = DetachMatcher(b"aab")
    assert matcher.feed(b"aa") == (b"", False)
    assert matcher.feed(b"ab") == (b"a", True)


def test_matcher_single_key():
    matcher = DetachMatcher(b"\x01")
    assert matcher.feed(b"q\x01") == (b"q", True)


def test_matcher_without_keys_never_detaches():
    matcher = DetachMatcher(b"")
    assert matcher.feed(b"\x10\x11") == (b"\x10\x11", False)


def test_flush_returns_held_bytes():
    matcher = DetachMatcher(b"\x10\x11")
    assert matcher.feed(b"z\x10") == (b"z", False)
    assert matcher.flush() == b"\x10"
    assert matcher.flush() == b""
