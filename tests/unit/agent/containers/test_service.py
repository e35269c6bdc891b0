"""The Containers servicer over a manager with created containers: List and Prune filters, Inspect, Wait."""

from __future__ import annotations

import asyncio
import time

import pytest

from agent.containers.service import ContainersService, _until
from kran import errors
from kran.api.v1 import containers_pb2

from .kit import ID1, ID2, Harness


class Context:
    """What Wait uses of a grpc.aio context: the headers it sends early."""

    def __init__(self) -> None:
        self.headers_sent = False

    async def send_initial_metadata(self, metadata) -> None:
        self.headers_sent = True


@pytest.fixture
def service(harness: Harness) -> ContainersService:  # noqa: F811
    async def setup() -> None:
        await harness.create(ID1, "web", labels={"tier": "front", "team": "a"})
        await harness.create(ID2, "db", labels={"tier": "back"})
    asyncio.run(setup())
    return ContainersService(harness.manager)


def names(service: ContainersService, **request) -> list[str]:
    filters = {k: containers_pb2.FilterValues(values=v) for k, v in request.pop("filters", {}).items()}
    reply = asyncio.run(service.List(containers_pb2.ListContainersRequest(filters=filters, **request), None))
    return [c.name for c in reply.containers]


def test_list_filters(service: ContainersService) -> None:
    assert names(service) == []  # nothing runs
    assert names(service, all=True) == ["db", "web"]
    assert names(service, all=True, limit=1) == ["db"]
    assert names(service, filters={"status": ["created"]}) == ["db", "web"]  # a status filter implies all
    assert names(service, filters={"status": ["running", "exited"]}) == []
    assert names(service, all=True, filters={"name": ["we"]}) == ["web"]
    assert names(service, all=True, filters={"label": ["tier=back", "team"]}) == ["db", "web"]
    assert names(service, all=True, filters={"label": ["tier=front"], "name": ["db"]}) == []
    assert names(service, all=True, filters={"id": [ID1[:6]]}) == ["web"]
    assert names(service, all=True, filters={"ancestor": ["busybox"]}) == ["db", "web"]
    assert names(service, all=True, filters={"ancestor": ["unknown"]}) == []
    assert names(service, all=True, filters={"node": ["host1"]}) == ["db", "web"]
    assert names(service, all=True, filters={"node": ["other"]}) == []
    with pytest.raises(errors.InvalidArgument, match="invalid filter 'colour'"):
        names(service, filters={"colour": ["red"]})
    with pytest.raises(errors.InvalidArgument, match="invalid filter 'status=sleeping'"):
        names(service, filters={"status": ["sleeping"]})


def test_prune_filters(service: ContainersService) -> None:
    def prune(**filters) -> list[str]:
        request = containers_pb2.PruneContainersRequest(
            filters={k: containers_pb2.FilterValues(values=v) for k, v in filters.items()})
        return list(asyncio.run(service.Prune(request, None)).deleted)
    assert prune(until=["1h"]) == []                # both are newer than an hour
    assert prune(**{"label!": ["tier"]}) == []
    assert prune(label=["tier=back"]) == [ID2]
    with pytest.raises(errors.InvalidArgument, match="invalid filter 'name'"):
        prune(name=["web"])
    assert prune() == [ID1]


def test_until_forms() -> None:
    now = time.time()
    assert _until("1700000000") == 1700000000
    assert abs(_until("1h30m") - (now - 5400)) < 5
    assert _until("2024-01-02T03:04:05Z") == 1704164645
    with pytest.raises(errors.InvalidArgument, match="invalid filter 'until=soon'"):
        _until("soon")


def test_inspect_and_wait(service: ContainersService) -> None:
    container = asyncio.run(service.Inspect(containers_pb2.InspectContainerRequest(container="web"), None))
    assert container.id == ID1 and container.state.status == "created"
    context = Context()
    reply = asyncio.run(service.Wait(containers_pb2.WaitContainerRequest(container="web"), context))
    assert reply.status_code == 0 and context.headers_sent
    asyncio.run(service.Remove(containers_pb2.RemoveContainerRequest(container="db"), None))
    with pytest.raises(errors.NotFound, match="No such container: db"):
        asyncio.run(service.Inspect(containers_pb2.InspectContainerRequest(container="db"), None))
