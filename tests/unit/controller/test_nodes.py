"""Node name resolution, registration checks, and the node message."""

from __future__ import annotations

import pytest

from controller.nodes import NodeState, resolve, validate_registration
from controller.store import Entry
from kran import errors
from kran.api.v1 import nodes_pb2


def state(node_id: str, hostname: str, ready: bool = True) -> NodeState:
    value = {"id": node_id, "availability": "ACTIVE", "labels": {"role": "db"},
             "created_at": "2024-01-02T03:04:05.000006+00:00",
             "updated_at": "2024-01-02T03:04:06+00:00",
             "description": {"hostname": hostname, "address": "10.0.0.1:7641", "cpus": 2,
                             "memory_bytes": "1024", "labels": {"zone": "a"}}}
    return NodeState(Entry(f"nodes/{node_id}", value, 1, 2), ready)


A = state("abc" + "0" * 22, "alpha")
B = state("abd" + "0" * 22, "beta")
C_DOWN = state("xyz" + "0" * 22, "beta", ready=False)


@pytest.mark.parametrize("ref, expected", [
    (A.id, A), ("alpha", A), ("abc", A), ("x", C_DOWN),
    ("beta", B),  # two nodes are named beta; only one is Ready
])
def test_resolve(ref: str, expected: NodeState) -> None:
    assert resolve([A, B, C_DOWN], ref) is expected


def test_resolve_refuses_ambiguity_and_unknowns() -> None:
    with pytest.raises(errors.InvalidArgument, match="prefix 'ab' is ambiguous"):
        resolve([A, B], "ab")
    with pytest.raises(errors.InvalidArgument, match="name 'beta' is ambiguous"):
        resolve([B, state("q" * 25, "beta")], "beta")
    with pytest.raises(errors.NotFound, match="^node gamma not found$"):
        resolve([A, B], "gamma")
    with pytest.raises(errors.InvalidArgument):
        resolve([A], "")


def test_exact_id_wins_over_hostname() -> None:
    named_like_id = state("k" * 25, A.id)
    assert resolve([named_like_id, A], A.id) is A


def description(**fields: object) -> nodes_pb2.NodeDescription:
    return nodes_pb2.NodeDescription(**{"hostname": "h", "address": "127.0.0.1:7641", **fields})


@pytest.mark.parametrize("node_id, desc, message", [
    ("short", description(), "invalid node id"),
    ("A" * 25, description(), "invalid node id"),
    ("a" * 25, description(hostname=""), "no hostname"),
    ("a" * 25, description(address=""), "invalid node address"),
    ("a" * 25, description(address="127.0.0.1"), "expected host:port"),
    ("a" * 25, description(address="h:x"), "invalid node address"),
])
def test_validate_registration_refuses(node_id: str, desc: nodes_pb2.NodeDescription,
                                       message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        validate_registration(node_id, desc)


def test_validate_registration_accepts() -> None:
    validate_registration("0123456789abcdefghijklmno", description())


def test_to_proto() -> None:
    node = A.to_proto()
    assert node.id == A.id and node.status == nodes_pb2.NODE_STATUS_READY
    assert node.description.hostname == "alpha" and node.description.memory_bytes == 1024
    assert dict(node.description.labels) == {"zone": "a"}
    assert dict(node.labels) == {"role": "db"}
    assert node.created_at.seconds == 1704164645 and node.created_at.nanos == 6000
    assert node.availability == nodes_pb2.NODE_AVAILABILITY_ACTIVE
    down = C_DOWN.to_proto()
    assert down.status == nodes_pb2.NODE_STATUS_DOWN and down.status_message
