"""EventLog against a real etcd: keys, leases, dedupe by cause, never failing its caller."""

from __future__ import annotations

import asyncio
import uuid

from controller.events import CAUSE, PREFIX, EventLog, rfc3339_nanos
from controller.store import EtcdStore
from tests.procs import Etcd, free_port


def run(coro):
    return asyncio.run(coro)


async def _mine(store: EtcdStore, actor: str) -> list:
    return [e for e in await store.list(PREFIX) if e.value["actor_id"] == actor]


def test_rfc3339_nanos() -> None:
    assert rfc3339_nanos(1_795_600_000_123_456_789) == "2026-11-25T09:46:40.123456789Z"
    assert rfc3339_nanos(0) == "1970-01-01T00:00:00.000000000Z"


def test_emit_writes_one_key_per_event_on_a_shared_lease(etcd: Etcd) -> None:
    actor = uuid.uuid4().hex

    async def body() -> None:
        store = EtcdStore([etcd.endpoint])
        try:
            log = EventLog(store, keep_seconds=120)
            await log.emit("container", "create", actor, {"name": "x", "image": "busybox"},
                           node_id="n1", node_name="h1")
            await log.emit("container", "start", actor, {"name": "x"})
            found = await _mine(store, actor)
            assert [e.value["action"] for e in found] == ["create", "start"]
            first = found[0].value
            assert first["type"] == "container" and first["attributes"] == {
                "name": "x", "image": "busybox"}
            assert first["node_id"] == "n1" and first["node_name"] == "h1"
            assert first["time"] == rfc3339_nanos(first["time_nano"])
            assert found[0].lease and found[0].lease == found[1].lease
            ttl = await store.refresh_lease(found[0].lease)
            assert 120 <= ttl <= 120 + 13
        finally:
            await store.close()
    run(body())


def test_emit_once_keeps_the_first_writer(etcd: Etcd) -> None:
    actor = uuid.uuid4().hex

    async def body() -> None:
        store = EtcdStore([etcd.endpoint])
        try:
            replicas = [EventLog(store, keep_seconds=60) for _ in range(3)]
            await asyncio.gather(*(log.emit_once(f"node-down-{actor}-7", "node", "down", actor,
                                                 {"name": "h1"}) for log in replicas))
            found = await _mine(store, actor)
            assert len(found) == 1 and found[0].key == f"{CAUSE}node-down-{actor}-7"
            await replicas[0].emit_once("not a token/", "node", "down", actor)
            assert len(await _mine(store, actor)) == 1
        finally:
            await store.close()
    run(body())


def test_emit_recovers_from_a_revoked_lease(etcd: Etcd) -> None:
    actor = uuid.uuid4().hex

    async def body() -> None:
        store = EtcdStore([etcd.endpoint])
        try:
            log = EventLog(store, keep_seconds=60)
            await log.emit("image", "pull", actor)
            (first,) = await _mine(store, actor)
            await store.revoke_lease(first.lease)
            await log.emit("image", "tag", actor)
            found = await _mine(store, actor)
            assert [e.value["action"] for e in found] == ["tag"] and found[0].lease != first.lease
        finally:
            await store.close()
    run(body())


def test_emit_never_raises_when_etcd_is_gone() -> None:
    async def body() -> None:
        store = EtcdStore([f"127.0.0.1:{free_port()}"])
        try:
            await EventLog(store).emit("container", "die", "x", {"exitCode": "1"})
            await EventLog(store).emit_once("c-1", "node", "down", "x")
        finally:
            await store.close()
    run(body())
