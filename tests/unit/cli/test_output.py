"""Sizes, durations, ids and tables, as docker prints them."""

from __future__ import annotations

import pytest

from cli.output import (bytes_size, created_since, ellipsis, human_duration, human_size,
                        rfc3339, short_id, table)

MINUTE, HOUR, DAY = 60, 3600, 86400
WEEK, MONTH, YEAR = 7 * DAY, 30 * DAY, 365 * DAY


@pytest.mark.parametrize("seconds, text", [
    (0.45, "Less than a second"), (1, "1 second"), (47, "47 seconds"), (59, "59 seconds"),
    (60, "About a minute"), (3 * MINUTE, "3 minutes"), (35 * MINUTE + 40, "35 minutes"),
    (59 * MINUTE, "59 minutes"), (HOUR, "About an hour"), (HOUR + 29 * MINUTE, "About an hour"),
    (HOUR + 31 * MINUTE, "2 hours"), (3 * HOUR + 59 * MINUTE, "4 hours"), (DAY, "24 hours"),
    (DAY + 12 * HOUR, "36 hours"), (2 * DAY, "2 days"), (13 * DAY + 5 * HOUR, "13 days"),
    (2 * WEEK, "2 weeks"), (4 * WEEK + 3 * DAY, "4 weeks"), (MONTH, "4 weeks"),
    (MONTH + 2 * WEEK, "6 weeks"), (2 * MONTH, "2 months"), (5 * MONTH + 2 * WEEK, "5 months"),
    (24 * MONTH, "24 months"), (24 * MONTH + 2 * WEEK, "2 years"),
    (3 * YEAR + 2 * MONTH, "3 years"),
])
def test_human_duration_matches_go_units(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize("size, text", [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (1024, "1.02kB"), (4261550, "4.26MB"),
    (1982256, "1.98MB"), (999_500, "1e+03kB"), (10 ** 12, "1TB"), (123_456_789, "123MB"),
])
def test_human_size_three_digits_decimal(size, text):
    assert human_size(size) == text


def test_human_size_four_digits_for_reclaimed_space():
    assert human_size(4261550, 4) == "4.262MB"


def test_bytes_size_binary():
    assert bytes_size(8 * 1024 ** 3) == "8GiB"
    assert bytes_size(25276502016) == "23.54GiB"


def test_created_since():
    assert created_since(1000, now=1000.5) == "Less than a second ago"
    assert created_since(1000, now=1000 + 2 * HOUR) == "2 hours ago"
    assert created_since(2000, now=1000) == "Less than a second ago"


def test_rfc3339_in_utc_uses_z():
    from datetime import timedelta, timezone
    assert rfc3339(0, timezone.utc) == "1970-01-01T00:00:00Z"
    assert rfc3339(0, timezone(timedelta(hours=2))) == "1970-01-01T02:00:00+02:00"


def test_short_id_and_ellipsis():
    assert short_id("sha256:" + "ab" * 32) == "abababababab"
    assert short_id("<missing>") == "<missing>"
    assert ellipsis("x" * 50, 45) == "x" * 44 + "…"
    assert ellipsis("short", 45) == "short"


def test_table_pads_like_tabwriter():
    out = table(["REPOSITORY", "TAG", "SIZE"], [["busybox", "latest", "4.26MB"],
                                                ["a-much-longer-name", "1", "1kB"]])
    assert out == (
        "REPOSITORY           TAG       SIZE\n"
        "busybox              latest    4.26MB\n"
        "a-much-longer-name   1         1kB\n")
