"""docker's event filters over stored events (pure logic)."""

from __future__ import annotations

import pytest

from controller.event_filters import matcher
from kran import errors

CID = "3f" + "0" * 62


def event(type="container", action="start", actor_id=CID, node_id="n" * 25, node_name="h1", **attributes):
    return {"type": type, "action": action, "actor_id": actor_id, "attributes": attributes,
            "node_id": node_id, "node_name": node_name, "time_nano": 1}


CONTAINER = event(name="web", image="busybox:latest", team="blue")
IMAGE = event("image", "tag", "busybox", name="registry:5000/app:1")
NODE = event("node", "down", "n" * 25, name="h1")
TASK = event(name="web.1.abc", image="busybox", **{"com.kran.service.id": "s" * 25,
                                                   "com.kran.service.name": "web"})
SERVICE = event("service", "create", "s" * 25, node_id="", node_name="", name="web")
ALL = [CONTAINER, IMAGE, NODE, TASK, SERVICE]


def selected(**filters):
    match = matcher(filters)
    return [e for e in ALL if match(e)]


def test_no_filter_selects_everything():
    assert selected() == ALL


def test_type_and_event_alternatives():
    assert selected(type=["node", "service"]) == [NODE, SERVICE]
    assert selected(event=["tag", "down"]) == [IMAGE, NODE]
    assert selected(type=["container"], event=["down"]) == []


def test_container_by_id_prefix_or_name():
    assert selected(container=["3f0"]) == [CONTAINER, TASK]
    assert selected(container=["web"]) == [CONTAINER, TASK]
    assert selected(container=["web.1"]) == [TASK]
    assert selected(container=["nothing"]) == []


def test_image_by_reference_with_or_without_tag():
    assert selected(image=["busybox"]) == [CONTAINER, IMAGE, TASK]
    assert selected(image=["busybox:latest"]) == [CONTAINER]
    assert selected(image=["registry:5000/app"]) == [IMAGE]


def test_node_by_id_prefix_or_hostname():
    assert selected(node=["h1"]) == [CONTAINER, IMAGE, NODE, TASK]
    assert selected(node=["nnn"]) == [CONTAINER, IMAGE, NODE, TASK]
    assert selected(node=["h2"]) == []


def test_service_events_and_its_tasks():
    assert selected(service=["web"]) == [TASK, SERVICE]
    assert selected(service=["sss"]) == [TASK, SERVICE]


def test_labels_all_must_match():
    assert selected(label=["team"]) == [CONTAINER]
    assert selected(label=["team=blue"]) == [CONTAINER]
    assert selected(label=["team=red"]) == []
    assert selected(label=["team=blue", "name=web"]) == [CONTAINER]


def test_bad_filters():
    with pytest.raises(errors.InvalidArgument, match="invalid filter 'colour'"):
        matcher({"colour": ["red"]})
    with pytest.raises(errors.InvalidArgument, match="needs a value"):
        matcher({"type": [""]})
