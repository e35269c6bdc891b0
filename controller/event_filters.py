"""`docker events --filter` for stored events (see controller/events.py for their shape).

Values of one key are alternatives; different keys must all match, as with
Docker:

    type=container|image|node|service
    event=<action>            create, start, die, pull, down, ...
    container=<id or name>    container events; an id prefix or name prefix matches (Docker's fuzzy match)
    image=<ref or id>         image events by name or id, and container events by their image
                              ("busybox" also matches "busybox:latest")
    node=<id, prefix or hostname>  node events of that node, and every event that happened on it
    service=<id or name>      service events, and the events of that service's task containers
    label=<key> | <key>=<value>   on the event's attributes (a container's labels); all must match
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kran import errors

KEYS = ("container", "event", "image", "label", "node", "service", "type")
SERVICE_ID_LABEL = "com.kran.service.id"
SERVICE_NAME_LABEL = "com.kran.service.name"

Event = Mapping[str, Any]   # the stored value: type, action, actor_id, attributes, node_id, ...
Matcher = Callable[[Event], bool]


def _fuzzy(values: Sequence[str], *sources: str) -> bool:
    return any(source and (source == value or source.startswith(value))
               for value in values for source in sources)


def _strip_tag(name: str) -> str:
    """"busybox:latest" -> "busybox"; a registry port ("host:5000/x") is kept."""
    if "@" in name:
        return name.partition("@")[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def _image(values: Sequence[str]) -> Matcher:
    wanted = set(values)

    def match(event: Event) -> bool:
        attributes = event.get("attributes", {})
        if event["type"] == "image":
            candidates = (event["actor_id"], attributes.get("name", ""))
        elif event["type"] == "container":
            candidates = (attributes.get("image", ""),)
        else:
            return False
        return any(c and (c in wanted or _strip_tag(c) in wanted) for c in candidates)
    return match


def _container(values: Sequence[str]) -> Matcher:
    def match(event: Event) -> bool:
        return event["type"] == "container" and _fuzzy(
            values, event["actor_id"], event.get("attributes", {}).get("name", ""))
    return match


def _node(values: Sequence[str]) -> Matcher:
    def match(event: Event) -> bool:
        if event["type"] == "node":
            node_id, name = event["actor_id"], event.get("attributes", {}).get("name", "")
        else:
            node_id, name = event.get("node_id", ""), event.get("node_name", "")
        return bool(node_id) and (_fuzzy(values, node_id) or name in values)
    return match


def _service(values: Sequence[str]) -> Matcher:
    def match(event: Event) -> bool:
        attributes = event.get("attributes", {})
        if event["type"] == "service":
            return _fuzzy(values, event["actor_id"]) or attributes.get("name", "") in values
        service_id = attributes.get(SERVICE_ID_LABEL, "")
        return bool(service_id) and (_fuzzy(values, service_id)
                                     or attributes.get(SERVICE_NAME_LABEL, "") in values)
    return match


def _labels(values: Sequence[str]) -> Matcher:
    wanted = [value.partition("=") for value in values]

    def match(event: Event) -> bool:
        attributes = event.get("attributes", {})
        return all(key in attributes and (not sep or attributes[key] == value)
                   for key, sep, value in wanted)
    return match


def _field(field: str, values: Sequence[str]) -> Matcher:
    wanted = set(values)
    return lambda event: event.get(field, "") in wanted


_BUILDERS: dict[str, Callable[[Sequence[str]], Matcher]] = {
    "container": _container,
    "event": lambda values: _field("action", values),
    "image": _image,
    "label": _labels,
    "node": _node,
    "service": _service,
    "type": lambda values: _field("type", values),
}


def matcher(filters: Mapping[str, Sequence[str]]) -> Matcher:
    """One predicate for all filters; errors.InvalidArgument for an unknown key or an empty value."""
    matchers = []
    for key, values in filters.items():
        if key not in _BUILDERS:
            raise errors.InvalidArgument(
                f"invalid filter '{key}' (events can be filtered by {', '.join(KEYS)})")
        values = [value for value in values if value]
        if not values:
            raise errors.InvalidArgument(f"filter '{key}' needs a value")
        matchers.append(_BUILDERS[key](values))
    return lambda event: all(m(event) for m in matchers)
