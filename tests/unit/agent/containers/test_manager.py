"""The container manager's records without running tasks: create, lookup, rename, wait, remove, recover.

A real image store (a busybox rootfs imported) and a real Runtime object;
nothing here starts a container (tests/integration/test_agent_containers.py does).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agent.images.store import ImageStore
from kran import errors
from kran.api.v1 import containers_pb2

from .kit import ID1, ID2, Harness

def test_create_records_the_effective_container(harness: Harness, state: Path) -> None:
    container = asyncio.run(harness.create(ID1, "web", env=["A=1"], labels={"x": "y"}))
    assert (container.id, container.name, container.node_id, container.node_name) == (ID1, "web", "node1", "host1")
    assert container.image_id.startswith("sha256:") and container.created.seconds > 0
    assert (container.path, list(container.args)) == ("sh", [])
    assert list(container.config.env) == ["A=1", "PATH=/bin"] and container.config.working_dir == "/srv"
    assert (container.state.status, container.state.sequence) == ("created", 1)
    saved = json.loads((state / "containers" / ID1 / "container.json").read_text())
    assert saved["name"] == "web" and saved["state"]["status"] == "created"
    assert (state / "containers" / ID1 / "upper").is_dir() and (state / "containers" / ID1 / "work").is_dir()
    assert [(r.id, r.state.sequence, r.removed) for r in harness.reports] == [(ID1, 1, False)]


def test_create_refusals_leave_nothing(harness: Harness, state: Path) -> None:
    async def scenario() -> None:
        await harness.create(ID1, "web")
        with pytest.raises(errors.AlreadyExists, match=r'^Conflict. The container name "/web" is already in use '
                                                       rf'by container "{ID1}". You have to remove'):
            await harness.create(ID2, "web")
        with pytest.raises(errors.AlreadyExists):
            await harness.create(ID1, "other")
        with pytest.raises(errors.NotFound, match="^No such image: nope$"):
            await harness.create(ID2, image="nope")
        with pytest.raises(errors.InvalidArgument, match="Minimum memory limit"):
            await harness.create(ID2, memory_bytes=1000)
        with pytest.raises(errors.InvalidArgument, match="Invalid container name"):
            await harness.create(ID2, "bad name")
        with pytest.raises(errors.InvalidArgument, match="64 hex digits"):
            await harness.create("abc")
    asyncio.run(scenario())
    assert sorted(p.name for p in (state / "containers").iterdir()) == [ID1]
    assert [r.name for r in harness.manager.list()] == ["web"]


def test_lookup_by_id_prefix_and_name(harness: Harness) -> None:
    async def scenario() -> None:
        await harness.create(ID1, "one")
        await harness.create(ID2, "two")
    asyncio.run(scenario())
    get = harness.manager.get
    assert get(ID1).name == "one" and get("a2a2").name == "two" and get("/two").id == ID2 and get("one").id == ID1
    with pytest.raises(errors.InvalidArgument, match="multiple IDs found with provided prefix: a"):
        get("a")
    with pytest.raises(errors.NotFound, match="^No such container: zz$"):
        get("zz")
    assert [r.id for r in harness.manager.list()] == [ID2, ID1]  # newest first
    assert harness.manager.pid(ID1) is None and harness.manager.state(ID1).status == "created"


def test_rename(harness: Harness, state: Path) -> None:
    async def scenario() -> None:
        await harness.create(ID1, "one")
        await harness.create(ID2, "two")
        with pytest.raises(errors.AlreadyExists, match='"/two" is already in use'):
            await harness.manager.rename("one", "two")
        with pytest.raises(errors.InvalidArgument, match="same name as its current name"):
            await harness.manager.rename("one", "one")
        assert (await harness.manager.rename("one", "/first")).name == "first"
    asyncio.run(scenario())
    assert json.loads((state / "containers" / ID1 / "container.json").read_text())["name"] == "first"


def test_stop_and_kill_of_a_created_container(harness: Harness) -> None:
    async def scenario() -> None:
        await harness.create(ID1, "one")
        assert (await harness.manager.stop("one")).state.status == "created"
        with pytest.raises(errors.FailedPrecondition,
                           match=f"^cannot kill container: one: container {ID1} is not running$"):
            await harness.manager.kill("one")
        with pytest.raises(errors.InvalidArgument, match="^Invalid signal: BOGUS$"):
            await harness.manager.kill("one", "BOGUS")
    asyncio.run(scenario())


def test_waits_and_remove(harness: Harness, state: Path) -> None:
    async def scenario() -> None:
        await harness.create(ID1, "one")
        assert (await harness.manager.wait("one")).state.exit_code == 0  # not running: at once
        registered = asyncio.Event()

        async def on_registered() -> None:
            registered.set()
        next_exit = asyncio.create_task(harness.manager.wait("one", "next-exit", on_registered))
        removed = asyncio.create_task(harness.manager.wait("one", "removed"))
        await registered.wait()
        await asyncio.sleep(0.05)
        assert not next_exit.done() and not removed.done()
        with pytest.raises(errors.InvalidArgument, match='invalid condition: "soon"'):
            await harness.manager.wait("one", "soon")
        await harness.manager.remove("one")
        assert (await removed).removed and (await next_exit).removed
    asyncio.run(scenario())
    assert not (state / "containers" / ID1).exists()
    last = harness.reports[-1]
    assert (last.id, last.removed, last.state.sequence) == (ID1, True, 2)
    with pytest.raises(errors.NotFound):
        harness.manager.get("one")


def test_prune_removes_what_does_not_run(harness: Harness) -> None:
    async def scenario() -> tuple[list[str], int]:
        await harness.create(ID1, "one", labels={"keep": "yes"})
        await harness.create(ID2, "two")
        return await harness.manager.prune(lambda record: "keep" in record.config.labels)
    deleted, _ = asyncio.run(scenario())
    assert deleted == [ID2] and [r.id for r in harness.manager.list()] == [ID1]


def test_records_survive_a_new_manager(harness: Harness, state: Path, store: ImageStore) -> None:
    asyncio.run(harness.create(ID1, "one", restart_policy=containers_pb2.RestartPolicy(name="always")))
    again = Harness(state, store)

    async def recover() -> None:
        await again.manager.recover()
        await again.manager.close()
    asyncio.run(recover())
    record = again.manager.get("one")
    assert record.config.restart_policy.name == "always" and record.state.sequence == 1
    assert again.manager.snapshot()[0].id == ID1 and again.manager.counts() == {"created": 1}
