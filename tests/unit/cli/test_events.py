"""`kran events` output and flags (pure logic)."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from cli.events import event_line, event_time, filters_of, parse_filter
from kran import errors

NANOS = 1_795_600_000 * 1_000_000_000 + 42


def test_event_time_is_go_rfc3339_nano_fixed():
    assert event_time(NANOS, timezone.utc) == "2026-11-25T09:46:40.000000042Z"
    assert event_time(NANOS, timezone(timedelta(hours=1))) == "2026-11-25T10:46:40.000000042+01:00"
    assert event_time(NANOS, timezone(timedelta(hours=-5, minutes=-30))).endswith("-05:30")


def test_event_line_sorts_attributes():
    attrs = {"Type": "container", "Action": "start", "timeNano": NANOS,
             "Actor": {"ID": "abc", "Attributes": {"name": "x", "image": "busybox"}}}
    assert event_line(attrs, timezone.utc) == (
        "2026-11-25T09:46:40.000000042Z container start abc (image=busybox, name=x)")
    attrs["Actor"]["Attributes"] = {}
    assert event_line(attrs, timezone.utc) == "2026-11-25T09:46:40.000000042Z container start abc"


def test_filters():
    pairs = [parse_filter("type=container"), parse_filter("label=a=b"), parse_filter("type=image")]
    assert filters_of(pairs) == {"type": ["container", "image"], "label": ["a=b"]}
    for bad in ("type", "=x"):
        with pytest.raises(errors.InvalidArgument, match="bad format of filter"):
            parse_filter(bad)
