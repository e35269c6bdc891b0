"""The Events service and the presence watcher against a real etcd, over real gRPC."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import pytest

from controller.api.events import EventsService
from controller.events import PREFIX, EventLog, PresenceEvents
from controller.store import EtcdStore
from kran.api.v1 import containers_pb2, events_pb2, events_pb2_grpc
from kran.server import start_server
from tests.procs import Etcd, free_port


def run(coro):
    return asyncio.run(coro)


async def _with_service(etcd: Etcd, body) -> None:
    store = EtcdStore([etcd.endpoint])
    address = f"127.0.0.1:{free_port()}"
    server = await start_server(address, [(events_pb2_grpc.add_EventsServicer_to_server,
                                           EventsService(store), "kran.api.v1.Events")])
    channel = grpc.aio.insecure_channel(address)
    try:
        await body(events_pb2_grpc.EventsStub(channel), EventLog(store))
    finally:
        await channel.close()
        await server.stop(None)
        await store.close()


def request(since: int | None = None, until: int | None = None, **filters) -> events_pb2.EventsRequest:
    out = events_pb2.EventsRequest(filters={k: containers_pb2.FilterValues(values=v if isinstance(v, list) else [v])
                                            for k, v in filters.items()})
    for field, nanos in (("since", since), ("until", until)):
        if nanos is not None:
            getattr(out, field).seconds, getattr(out, field).nanos = divmod(nanos, 1_000_000_000)
    return out


async def _read(call, count: int) -> list[events_pb2.Event]:
    return [await asyncio.wait_for(call.read(), 10) for _ in range(count)]


def test_history_between_since_and_until(etcd: Etcd) -> None:
    actor = uuid.uuid4().hex

    async def body(stub, log: EventLog) -> None:
        since = time.time_ns()
        for action in ("create", "start", "die"):
            await log.emit("container", action, actor, {"name": "web", "exitCode": "0"},
                           node_id="n1", node_name="h1")
        await log.emit("image", "pull", actor, {"name": "busybox"})
        events = [e async for e in stub.Stream(request(since, time.time_ns(), container=actor))]
        assert [e.action for e in events] == ["create", "start", "die"]
        first = events[0]
        assert (first.type, first.actor.id, first.node_id, first.node_name) == (
            "container", actor, "n1", "h1")
        assert dict(first.actor.attributes) == {"name": "web", "exitCode": "0"}
        assert since <= first.time.seconds * 1_000_000_000 + first.time.nanos <= time.time_ns()
        everything = [e async for e in stub.Stream(request(since, time.time_ns()))]
        assert [e.action for e in everything if e.actor.id == actor] == ["create", "start", "die", "pull"]
        later = [e async for e in stub.Stream(request(time.time_ns(), time.time_ns() + 1, container=actor))]
        assert later == []
    run(_with_service(etcd, body))


def test_history_then_live_without_gaps_or_repeats(etcd: Etcd) -> None:
    actor = uuid.uuid4().hex

    async def body(stub, log: EventLog) -> None:
        since = time.time_ns()
        await log.emit("container", "create", actor)
        call = stub.Stream(request(since, container=actor))
        await call.initial_metadata()
        await log.emit("container", "start", actor)
        await log.emit("container", "die", actor)
        assert [e.action for e in await _read(call, 3)] == ["create", "start", "die"]
        call.cancel()
    run(_with_service(etcd, body))


def test_many_live_streams_see_each_event(etcd: Etcd) -> None:
    actor = uuid.uuid4().hex

    async def body(stub, log: EventLog) -> None:
        calls = [stub.Stream(request(event="start", type="container")) for _ in range(6)]
        await asyncio.gather(*(call.initial_metadata() for call in calls))
        await log.emit("container", "create", actor)   # filtered out
        await log.emit("container", "start", actor)
        for call in calls:
            [event] = await _read(call, 1)
            assert (event.action, event.actor.id) == ("start", actor)
            call.cancel()
    run(_with_service(etcd, body))


def test_until_in_the_future_ends_the_stream(etcd: Etcd) -> None:
    actor = uuid.uuid4().hex

    async def body(stub, log: EventLog) -> None:
        until = time.time_ns() + 1_500_000_000
        call = stub.Stream(request(until=until, container=actor))
        await call.initial_metadata()
        await log.emit("container", "start", actor)
        started = time.monotonic()
        events = [e async for e in call]
        assert [e.action for e in events] == ["start"]
        assert time.monotonic() - started < 5
    run(_with_service(etcd, body))


def test_bad_requests(etcd: Etcd) -> None:
    async def body(stub, log: EventLog) -> None:
        for bad in (request(colour="red"), request(since=2_000_000_000, until=1_000_000_000)):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                [e async for e in stub.Stream(bad)]
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    run(_with_service(etcd, body))


def test_presence_changes_become_one_event_for_all_replicas(etcd: Etcd) -> None:
    node_id = uuid.uuid4().hex[:25]

    async def body() -> None:
        store = EtcdStore([etcd.endpoint])
        watchers = [PresenceEvents(store, EventLog(store, keep_seconds=60), retry_seconds=0.1)
                    for _ in range(3)]
        tasks = [asyncio.create_task(w.run()) for w in watchers]
        try:
            await asyncio.wait_for(asyncio.gather(*(w.watching.wait() for w in watchers)), 10)
            await store.put(f"nodes/{node_id}", {"id": node_id, "description": {"hostname": "h9"}})
            lease = await store.grant_lease(30)
            await store.put(f"presence/{node_id}", {"node_id": node_id}, lease=lease)
            again = await store.grant_lease(30)   # a re-registration: a new lease, the key stays
            await store.put(f"presence/{node_id}", {"node_id": node_id}, lease=again)
            await store.revoke_lease(lease)
            await store.revoke_lease(again)          # the key goes: down

            async def mine() -> list[str]:
                found = [e.value for e in await store.list(PREFIX) if e.value["actor_id"] == node_id]
                return [v["action"] for v in sorted(found, key=lambda v: v["time_nano"])]
            deadline = time.monotonic() + 10
            while await mine() != ["ready", "down"]:
                assert time.monotonic() < deadline, await mine()
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)
            assert await mine() == ["ready", "down"]
            found = [e.value for e in await store.list(PREFIX) if e.value["actor_id"] == node_id]
            assert all(v["attributes"] == {"name": "h9"} and v["node_name"] == "h9" for v in found)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await store.delete(f"nodes/{node_id}")
            await store.close()
    run(body())
