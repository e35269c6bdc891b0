"""docker's --since/--until forms: durations, RFC 3339, dates, unix seconds."""

from __future__ import annotations

from datetime import datetime

import pytest

from cli.logs import go_duration, parse_time
from kran import errors

NOW = 1_700_000_000.0


@pytest.mark.parametrize("text, seconds", [
    ("10m", 600), ("1h30m", 5400), ("1.5h", 5400), ("300ms", 0.3), ("2h45m10s", 9910),
    ("-1m", -60), ("90s", 90), ("1us", 1e-6)])
def test_go_durations(text, seconds):
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "m", "10x", "1h 2m", "abc"])
def test_not_go_durations(text):
    assert go_duration(text) is None


@pytest.mark.parametrize("text, expected", [
    ("10m", NOW - 600),
    ("2023-11-14T22:13:20Z", NOW),
    ("2023-11-14T22:13:20.5Z", NOW + 0.5),
    ("2023-11-14T23:13:20+01:00", NOW),
    ("2023-11-14T22:13Z", NOW - 20),
    ("1700000000", NOW),
    ("1700000000.25", NOW + 0.25),
    ("0", 0.0),
])
def test_parse_time(text, expected):
    assert parse_time(text, now=NOW) == pytest.approx(expected)


def test_times_without_zone_are_local():
    assert parse_time("2023-11-14T22:13:20", now=NOW) == \
        datetime(2023, 11, 14, 22, 13, 20).timestamp()
    assert parse_time("2023-11-14", now=NOW) == datetime(2023, 11, 14).timestamp()


@pytest.mark.parametrize("text", ["yesterday", "2023-13-01", "12:00", "1.2.3"])
def test_parse_time_refuses(text):
    with pytest.raises(errors.InvalidArgument, match="failed to parse value as time or "
                                                     "duration"):
        parse_time(text, now=NOW)
