"""Events: what happens in the cluster, as docker-py's `client.events()` streams it.

    for event in client.events(since="10m", filters={"type": "container"}):
        print(event.time, event.type, event.action, event.name)

Times (since, until) are datetimes, Unix timestamps (int, float or
"1700000000.5"), RFC 3339 text ("2026-11-25T10:00:00Z", "2026-11-25";
without a zone, local time, as docker reads them) or durations before now
("10m", "1h30m", "1.5h"), as the docker CLI takes them.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from kran import errors
from kran.api.v1 import containers_pb2, events_pb2

if TYPE_CHECKING:
    from kran.client.client import Client

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h)"
                       r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIX = re.compile(r"^(\d+)(?:\.(\d{1,9}))?$")
_LAYOUTS = ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f",
            "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M", "%Y-%m-%d%z", "%Y-%m-%d")


def _duration_nanos(text: str) -> int | None:
    """A Go duration ("10m", "1h30m", "-1.5h", "300ms") in nanoseconds, None if text is not one."""
    if not _DURATION.match(text):
        return None
    total = sum(float(number) * _UNITS[unit] for number, unit in _DURATION_PART.findall(text))
    return -int(total) if text.startswith("-") else int(total)


def _rfc3339_nanos(text: str) -> int | None:
    """RFC 3339 (any fraction, Z or offset) or a shorter docker layout; None if it is none."""
    stamp = text.strip()
    if stamp.endswith(("Z", "z")):
        stamp = stamp[:-1] + "+00:00"
    nanos = 0
    fraction = re.search(r"\.(\d+)", stamp)
    if fraction:
        digits = fraction.group(1)
        nanos = int(digits[:9].ljust(9, "0"))
        stamp = stamp[:fraction.start()] + stamp[fraction.end():]
    for layout in _LAYOUTS:
        if ".%f" in layout:
            continue  # the fraction is taken off above, to keep nanoseconds
        try:
            parsed = datetime.strptime(stamp, layout)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            parsed = parsed.astimezone()  # no zone: local time, as docker reads it
        return int(parsed.timestamp()) * 1_000_000_000 + nanos
    return None


def timestamp_nanos(value: datetime | int | float | str, now: float | None = None) -> int:
    """A since/until value as Unix nanoseconds (see the module's docstring for the forms).

    errors.InvalidArgument for text that is none of them.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.astimezone()
        return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000
    if isinstance(value, int) and not isinstance(value, bool):
        return value * 1_000_000_000
    if isinstance(value, float):
        seconds = math.floor(value)
        return seconds * 1_000_000_000 + round((value - seconds) * 1e9)
    text = str(value).strip()
    duration = _duration_nanos(text)
    if duration is not None:
        return int((time.time() if now is None else now) * 1_000_000_000) - duration
    unix = _UNIX.match(text)
    if unix:
        return int(unix.group(1)) * 1_000_000_000 + int((unix.group(2) or "").ljust(9, "0"))
    parsed = _rfc3339_nanos(text)
    if parsed is not None:
        return parsed
    raise errors.InvalidArgument(
        f"invalid time {text!r}: expected an RFC 3339 time, a Unix timestamp or a duration "
        "such as 10m")


def event_attrs(message: events_pb2.Event) -> dict[str, Any]:
    """An Event message as docker's events API shapes it (plus the node it happened on)."""
    nanos = message.time.seconds * 1_000_000_000 + message.time.nanos
    attributes = dict(message.actor.attributes)
    attrs: dict[str, Any] = {}
    if message.type in ("container", "image"):
        # The fields docker still sends for older clients.
        attrs.update({"status": message.action, "id": message.actor.id,
                      "from": attributes.get("image", "")})
    attrs.update({
        "Type": message.type,
        "Action": message.action,
        "Actor": {"ID": message.actor.id, "Attributes": attributes},
        "scope": "swarm",
        "time": message.time.seconds,
        "timeNano": nanos,
        "Node": {"ID": message.node_id, "Name": message.node_name},
    })
    return attrs


class Event:
    """One event: `type`, `action`, `id` (of the actor), `attributes`, `name`, `time`, `node_name`.

    `attrs` is docker's JSON shape of it.
    """

    def __init__(self, attrs: dict[str, Any]):
        self.attrs = attrs

    def __repr__(self) -> str:
        return f"<Event: {self.type} {self.action} {self.id[:12]}>"

    @property
    def type(self) -> str:
        """container, image, node or service."""
        return self.attrs["Type"]

    @property
    def action(self) -> str:
        """create, start, die, pull, down, ..."""
        return self.attrs["Action"]

    @property
    def id(self) -> str:
        """The id of what the event is about (a container id, an image reference, ...)."""
        return self.attrs["Actor"]["ID"]

    @property
    def attributes(self) -> dict[str, str]:
        """name, image, exitCode, a container's labels, ..."""
        return self.attrs["Actor"]["Attributes"]

    @property
    def name(self) -> str:
        """The actor's name (container name, image reference, node hostname), "" if none."""
        return self.attributes.get("name", "")

    @property
    def time_nano(self) -> int:
        """When it happened, in Unix nanoseconds."""
        return self.attrs["timeNano"]

    @property
    def time(self) -> datetime:
        """When it happened (UTC, microseconds)."""
        return datetime.fromtimestamp(self.time_nano / 1e9, tz=timezone.utc)

    @property
    def node_id(self) -> str:
        """The node it happened on ("" for events of the whole cluster)."""
        return self.attrs["Node"]["ID"]

    @property
    def node_name(self) -> str:
        """The hostname of that node."""
        return self.attrs["Node"]["Name"]


class EventStream:
    """The events as they come (docker-py's CancellableStream): iterate it, close() to stop.

    The stream is open when it is returned: every event that happens from
    then on reaches it. close() may be called from another thread.
    """

    def __init__(self, client: Client, request: events_pb2.EventsRequest, decode: bool | None):
        self._decode = decode
        self._messages = client.api.open_stream(client.api.events.Stream, request)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        attrs = event_attrs(next(self._messages))
        if self._decode is None:
            return Event(attrs)
        if self._decode:
            return attrs
        return json.dumps(attrs, separators=(",", ":")).encode()

    def close(self) -> None:
        """End the stream (the call is cancelled); a reader in another thread stops."""
        self._messages.cancel()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def events_request(since: Any = None, until: Any = None,
                   filters: Mapping[str, str | Sequence[str]] | None = None) -> events_pb2.EventsRequest:
    """The EventsRequest for since, until and docker-style filters ({"type": "container"})."""
    request = events_pb2.EventsRequest()
    now = time.time()
    for field, value in (("since", since), ("until", until)):
        if value is None or value == "":
            continue
        nanos = timestamp_nanos(value, now)
        stamp = getattr(request, field)
        stamp.seconds, stamp.nanos = divmod(nanos, 1_000_000_000)
    for key, values in (filters or {}).items():
        listed = [values] if isinstance(values, str) else list(values)
        request.filters[key].CopyFrom(containers_pb2.FilterValues(values=listed))
    return request
