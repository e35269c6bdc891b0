"""The SDK's event times, requests and Event models (pure logic)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from kran import errors
from kran.api.v1 import events_pb2
from kran.client.events import Event, event_attrs, events_request, timestamp_nanos

NOW = 1_795_600_000.0   # 2026-11-25T09:46:40Z
S = 1_000_000_000


@pytest.mark.parametrize("text, expected", [
    ("1795600000", 1_795_600_000 * S),
    ("1795600000.5", 1_795_600_000 * S + 500_000_000),
    ("1795600000.000000001", 1_795_600_000 * S + 1),
    ("2026-11-25T09:46:40Z", 1_795_600_000 * S),
    ("2026-11-25T09:46:40.123456789Z", 1_795_600_000 * S + 123_456_789),
    ("2026-11-25T10:46:40+01:00", 1_795_600_000 * S),
    ("2026-11-25T09:46:40.5+00:00", 1_795_600_000 * S + 500_000_000),
    ("10m", int(NOW * S) - 600 * S),
    ("1h30m", int(NOW * S) - 5400 * S),
    ("1.5h", int(NOW * S) - 5400 * S),
    ("300ms", int(NOW * S) - 300_000_000),
    ("-10s", int(NOW * S) + 10 * S),
    ("0s", int(NOW * S)),
])
def test_timestamp_forms(text, expected):
    assert timestamp_nanos(text, now=NOW) == expected


def test_times_without_a_zone_are_local():
    local = datetime(2026, 11, 25, 9, 46, 40).astimezone()
    assert timestamp_nanos("2026-11-25T09:46:40") == int(local.timestamp()) * S
    day = datetime(2026, 11, 25).astimezone()
    assert timestamp_nanos("2026-11-25") == int(day.timestamp()) * S


def test_datetimes_and_numbers():
    moment = datetime(2026, 11, 25, 9, 46, 40, 250000, tzinfo=timezone.utc)
    assert timestamp_nanos(moment) == 1_795_600_000 * S + 250_000_000
    assert timestamp_nanos(1_795_600_000) == 1_795_600_000 * S
    assert timestamp_nanos(1_795_600_000.25) == 1_795_600_000 * S + 250_000_000


@pytest.mark.parametrize("text", ["yesterday", "10x", "2026-13-01", "", "1h-5m", "12:00"])
def test_bad_times(text):
    with pytest.raises(errors.InvalidArgument, match="invalid time"):
        timestamp_nanos(text, now=NOW)


def test_events_request():
    request = events_request(since="1795600000.5", until=datetime(2026, 11, 25, 10, tzinfo=timezone.utc),
                             filters={"type": "container", "event": ["start", "die"]})
    assert (request.since.seconds, request.since.nanos) == (1_795_600_000, 500_000_000)
    assert request.until.seconds == 1_795_600_000 + 800
    assert {k: list(v.values) for k, v in request.filters.items()} == {
        "type": ["container"], "event": ["start", "die"]}
    assert not events_request().HasField("since")


def test_event_attrs_and_model():
    message = events_pb2.Event(type="container", action="die", node_id="n1", node_name="h1",
                               actor=events_pb2.EventActor(id="c" * 64, attributes={
                                   "name": "web", "image": "busybox", "exitCode": "3"}))
    message.time.seconds, message.time.nanos = 1_795_600_000, 5
    attrs = event_attrs(message)
    assert attrs["Type"] == "container" and attrs["Action"] == "die"
    assert attrs["status"] == "die" and attrs["id"] == "c" * 64 and attrs["from"] == "busybox"
    assert attrs["Actor"] == {"ID": "c" * 64, "Attributes": {"name": "web", "image": "busybox",
                                                             "exitCode": "3"}}
    assert attrs["time"] == 1_795_600_000 and attrs["timeNano"] == 1_795_600_000 * S + 5
    assert attrs["Node"] == {"ID": "n1", "Name": "h1"}
    json.dumps(attrs)
    event = Event(attrs)
    assert (event.type, event.action, event.id, event.name) == ("container", "die", "c" * 64, "web")
    assert event.node_name == "h1" and event.attributes["exitCode"] == "3"
    assert event.time == datetime(2026, 11, 25, 9, 46, 40, tzinfo=timezone.utc) + timedelta(0)
    node = event_attrs(events_pb2.Event(type="node", action="down", actor=events_pb2.EventActor(id="n1")))
    assert "status" not in node and node["Actor"]["Attributes"] == {}
