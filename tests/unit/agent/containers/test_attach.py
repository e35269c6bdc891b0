"""Attach before anything runs: the options message, bad detach keys, stopped containers, log replay.

Live streams (stdin, detach keys, several clients, a terminal, start) run
against a real agent in tests/integration/test_agent_containers.py.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from agent.containers.attach import attach
from kran import errors
from kran.api.v1 import containers_pb2

from .kit import ID1, Harness


def responses(harness: Harness, *requests: containers_pb2.AttachRequest) -> list[containers_pb2.AttachResponse]:  # noqa: F811
    async def requests_stream():
        for request in requests:
            yield request

    async def go() -> list[containers_pb2.AttachResponse]:
        return [r async for r in attach(harness.manager, requests_stream())]
    return asyncio.run(go())


def options(**fields) -> containers_pb2.AttachRequest:
    return containers_pb2.AttachRequest(options=containers_pb2.AttachOptions(container="one", **fields))


@pytest.fixture
def created(harness: Harness) -> Harness:  # noqa: F811
    asyncio.run(harness.create(ID1, "one"))
    return harness


def test_the_first_message_must_be_the_options(created: Harness) -> None:
    with pytest.raises(errors.InvalidArgument, match="must carry the attach options"):
        responses(created, containers_pb2.AttachRequest(stdin=b"x"))
    with pytest.raises(errors.InvalidArgument, match="must carry the attach options"):
        responses(created)


def test_bad_detach_keys_and_unknown_containers(created: Harness) -> None:
    with pytest.raises(errors.InvalidArgument, match=r"Invalid detach keys \(ctrl-\) provided"):
        responses(created, options(detach_keys="ctrl-"))
    with pytest.raises(errors.NotFound, match="No such container: nope"):
        responses(created, containers_pb2.AttachRequest(options=containers_pb2.AttachOptions(container="nope")))


def test_a_stopped_container_cannot_be_attached(created: Harness) -> None:
    with pytest.raises(errors.FailedPrecondition, match="You cannot attach to a stopped container, start it first"):
        responses(created, options(stdout=True))


def test_logs_of_a_stopped_container_are_replayed(created: Harness) -> None:
    record = created.manager.get("one")
    record.log_path.write_text("".join(json.dumps({"log": text, "stream": stream, "time": "2024-01-01T00:00:00Z"})
                                       + "\n" for text, stream in (("a\n", "stdout"), ("b\n", "stderr"))))
    got = responses(created, options(stdout=True, stderr=True, logs=True))
    assert [(r.WhichOneof("part"), getattr(r, r.WhichOneof("part"))) for r in got] == [
        ("stdout", b"a\n"), ("stderr", b"b\n")]
    assert [r.stdout for r in responses(created, options(stdout=True, logs=True))] == [b"a\n"]
