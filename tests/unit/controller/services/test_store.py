"""ServiceStore against a real etcd: names, versions, updates, rollbacks, removal, tasks."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from controller.services.records import Task, UpdateState
from controller.services.store import ServiceStore
from controller.store import Check, EtcdStore
from kran import errors
from kran.api.v1 import containers_pb2, services_pb2
from tests.procs import Etcd


def run(body, etcd: Etcd):
    async def main():
        store = EtcdStore([etcd.endpoint])
        try:
            return await body(ServiceStore(store), store)
        finally:
            await store.close()
    return asyncio.run(main())


def unique() -> str:
    return "svc" + uuid.uuid4().hex[:8]


def spec(name: str, replicas: int = 2, image: str = "busybox") -> services_pb2.ServiceSpec:
    return services_pb2.ServiceSpec(name=name, replicas=replicas,
                                    task=containers_pb2.ContainerConfig(image=image))


def test_create_resolve_and_names_are_unique(etcd: Etcd) -> None:
    name = unique()

    async def body(services: ServiceStore, store: EtcdStore) -> None:
        created = await services.create(spec(name))
        assert created.version > 0 and created.spec.restart_policy.condition == "any"
        for ref in (created.id, name, created.id[:10]):
            assert (await services.resolve(ref)).id == created.id
        with pytest.raises(errors.AlreadyExists, match=f"service with name {name} already exists"):
            await services.create(spec(name))
        with pytest.raises(errors.NotFound, match="service nope-x not found"):
            await services.resolve("nope-x")
        await services.remove(created.id)
    run(body, etcd)


def test_generated_names(etcd: Etcd) -> None:
    async def body(services: ServiceStore, store: EtcdStore) -> None:
        created = await services.create(spec(""))
        assert "_" in created.name
        await services.remove(created.id)
    run(body, etcd)


def test_update_starts_a_rolling_update_only_for_a_new_template(etcd: Etcd) -> None:
    name = unique()

    async def body(services: ServiceStore, store: EtcdStore) -> None:
        created = await services.create(spec(name))
        scaled = await services.update(name, spec(name, replicas=5))
        assert scaled.spec.replicas == 5 and scaled.update_status.state == ""
        assert scaled.previous_spec.replicas == 2 and scaled.digest == created.digest
        changed = await services.update(name, spec(name, 5, "busybox:1"))
        assert changed.update_status.state == "updating" and changed.digest != created.digest
        forced = await services.update(name, spec(name, 5, "busybox:1"), force=True)
        assert forced.digest != changed.digest and forced.force == 1
        with pytest.raises(errors.FailedPrecondition, match="update out of sequence"):
            await services.update(name, spec(name, 1), version=created.version)
        with pytest.raises(errors.InvalidArgument, match="renaming services is not supported"):
            await services.update(name, spec(name + "x"))
        await services.remove(name)
    run(body, etcd)


def test_rollback_swaps_the_specs(etcd: Etcd) -> None:
    name = unique()

    async def body(services: ServiceStore, store: EtcdStore) -> None:
        created = await services.create(spec(name))
        with pytest.raises(errors.FailedPrecondition, match="does not have a previous spec"):
            await services.rollback(name)
        await services.update(name, spec(name, image="busybox:1"))
        back = await services.rollback(name)
        assert back.spec.task.image == "busybox" and back.previous_spec.task.image == "busybox:1"
        assert back.update_status.state == "rollback_started"
        assert back.digest == created.digest
        await services.remove(name)
    run(body, etcd)


def test_leader_status_writes_are_fenced(etcd: Etcd) -> None:
    name = unique()

    async def body(services: ServiceStore, store: EtcdStore) -> None:
        created = await services.create(spec(name))
        fence_key = f"test/{uuid.uuid4().hex}"
        revision = await store.create(fence_key, {})
        fence = Check(fence_key, "create", revision)
        done = UpdateState("completed", 1.0, 2.0, "update completed")
        assert await services.set_status(created, done, False, fence)
        assert (await services.resolve(name)).update_status == done
        assert not await services.set_status(created, done, False, fence)  # stale record
        await store.delete(fence_key)
        with pytest.raises(errors.Conflict):
            await services.set_status(await services.resolve(name), done, False, fence)
        await services.remove(name)
    run(body, etcd)


def test_remove_frees_the_name_and_tasks_are_listed_and_deleted(etcd: Etcd) -> None:
    name = unique()

    async def body(services: ServiceStore, store: EtcdStore) -> None:
        created = await services.create(spec(name))
        tasks = [Task(f"t{i:024d}", created.id, i, "c" * 64, created.digest, 1, "busybox", 1.0)
                 for i in range(200)]
        for task in tasks:
            await store.put(task.key, task.value())
        assert sorted(t.id for t in await services.tasks(created.id)) == [t.id for t in tasks]
        removed = await services.remove(name)
        assert removed.id == created.id
        await services.delete_tasks(tasks)
        assert await services.tasks(created.id) == []
        again = await services.create(spec(name))
        await services.remove(again.id)
    run(body, etcd)
