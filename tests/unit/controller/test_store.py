"""EtcdStore against a real etcd: revisions, uniqueness, leases, outages."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from controller.store import Check, EtcdStore
from controller.store.etcd import parse_endpoints
from kran import errors
from tests.procs import Etcd, free_port


def run(coro):
    return asyncio.run(coro)


def unique() -> str:
    return f"test/{uuid.uuid4().hex}/"


async def _with_store(endpoints: list[str], body):
    store = EtcdStore(endpoints)
    try:
        return await body(store)
    finally:
        await store.close()


def test_create_is_create_only(etcd: Etcd) -> None:
    prefix = unique()

    async def body(store: EtcdStore) -> None:
        revision = await store.create(prefix + "a", {"n": 1})
        with pytest.raises(errors.AlreadyExists):
            await store.create(prefix + "a", {"n": 2})
        entry = await store.get(prefix + "a")
        assert entry.value == {"n": 1} and entry.mod_revision == revision
        assert entry.key == prefix + "a"
    run(_with_store([etcd.endpoint], body))


def test_update_compares_mod_revision(etcd: Etcd) -> None:
    prefix = unique()

    async def body(store: EtcdStore) -> None:
        first = await store.put(prefix + "a", {"n": 1})
        second = await store.update(prefix + "a", {"n": 2}, first)
        assert second > first
        with pytest.raises(errors.Conflict):
            await store.update(prefix + "a", {"n": 3}, first)
        assert (await store.get(prefix + "a")).value == {"n": 2}
    run(_with_store([etcd.endpoint], body))


def test_list_count_delete(etcd: Etcd) -> None:
    prefix = unique()

    async def body(store: EtcdStore) -> None:
        for name in ("b", "a", "c"):
            await store.put(prefix + name, {"name": name})
        assert [e.value["name"] for e in await store.list(prefix)] == ["a", "b", "c"]
        assert await store.count(prefix) == 3
        assert await store.delete(prefix + "a") is True
        assert await store.delete(prefix + "a") is False
        assert await store.get(prefix + "a") is None
        assert await store.count(prefix) == 2
    run(_with_store([etcd.endpoint], body))


def test_leases_bind_keys(etcd: Etcd) -> None:
    prefix = unique()

    async def body(store: EtcdStore) -> None:
        lease = await store.grant_lease(5)
        await store.put(prefix + "p", {"x": 1}, lease=lease)
        assert (await store.get(prefix + "p")).lease == lease
        assert await store.refresh_lease(lease) == 5
        await store.revoke_lease(lease)
        assert await store.get(prefix + "p") is None
        assert await store.refresh_lease(lease) == 0
        await store.revoke_lease(lease)  # unknown leases are ignored
    run(_with_store([etcd.endpoint], body))


def test_transaction_is_all_or_nothing(etcd: Etcd) -> None:
    prefix = unique()

    async def body(store: EtcdStore) -> None:
        await store.put(prefix + "old", {"n": 0})
        old = await store.get(prefix + "old")
        revision = await store.transaction([Check.absent(prefix + "new"), Check.unchanged(old)],
                                           {prefix + "new": {"n": 1}}, [prefix + "old"])
        made = await store.get(prefix + "new")
        assert made.value == {"n": 1} and made.mod_revision == revision
        assert await store.transaction([], {}) == 0
        assert await store.get(prefix + "old") is None
        # A failed check applies nothing: neither the put nor the delete.
        with pytest.raises(errors.Conflict):
            await store.transaction([Check.absent(prefix + "new")],
                                    {prefix + "other": {"n": 2}}, [prefix + "new"])
        assert await store.get(prefix + "other") is None
        assert await store.get(prefix + "new") is not None
        created = await store.get(prefix + "new")
        await store.transaction([Check(created.key, "create", created.create_revision)],
                                {prefix + "new": {"n": 3}})
        assert (await store.get(prefix + "new")).value == {"n": 3}
    run(_with_store([etcd.endpoint], body))


def test_keys_lists_names_only(etcd: Etcd) -> None:
    prefix = unique()

    async def body(store: EtcdStore) -> None:
        for name in ("ab2", "ab1", "b"):
            await store.put(prefix + name, {"big": "x" * 1000})
        assert await store.keys(prefix + "ab") == [prefix + "ab1", prefix + "ab2"]
        assert await store.keys(prefix + "z") == []
    run(_with_store([etcd.endpoint], body))


def test_status_and_failover(etcd: Etcd) -> None:
    dead = f"127.0.0.1:{free_port()}"

    async def body(store: EtcdStore) -> None:
        status = await store.status()
        assert status.version.startswith("3.") and status.endpoint == etcd.endpoint
    run(_with_store([dead, etcd.endpoint], body))


def test_unreachable_etcd_is_unavailable() -> None:
    dead = f"127.0.0.1:{free_port()}"

    async def body(store: EtcdStore) -> None:
        with pytest.raises(errors.Unavailable) as caught:
            await store.get("nodes/x")
        assert str(caught.value) == f"etcd at {dead} is unavailable"
    run(_with_store([dead], body))


def test_parse_endpoints() -> None:
    assert parse_endpoints("10.0.0.1:2379, etcd-2 ,[::1]:3000") == [
        "10.0.0.1:2379", "etcd-2:2379", "[::1]:3000"]
    with pytest.raises(errors.InvalidArgument):
        parse_endpoints(" , ")
    with pytest.raises(errors.InvalidArgument):
        parse_endpoints("host:99999")
