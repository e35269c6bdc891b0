"""Controller high availability: one leader among three controllers, a new one when it dies
(with no task lost or doubled), and a cluster that keeps serving with one etcd member down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from controller.containers import new_id as new_container_id
from controller.services.records import Task, encode_spec, new_id
from controller.services.store import ServiceStore
from controller.store import EtcdStore
from deploy.lab import Lab
from kran import errors
from kran.client import Client
from kran.defaults import HOST_ENV
from tests.cluster.conftest import Kran
from tests.procs import wait_until

FAST = ("--restart-delay", "0s", "--update-monitor", "500ms", "--rollback-monitor", "500ms",
        "--stop-grace-period", "1s")
# A dead leader's lease runs out after the controllers' --leader-ttl (3 s); then one of the
# others is elected at once.
ELECTION_BOUND = 6.0


@pytest.fixture
def client(clean_lab: Lab) -> Iterator[Client]:
    with Client(clean_lab.env()[HOST_ENV]) as sdk:
        yield sdk


def leaders(lab: Lab, alive: list[int]) -> set[str]:
    """The leader each living controller names (System.Info)."""
    named = set()
    for index in alive:
        with Client(lab.controller_endpoints[index]) as one:
            named.add(one.info()["Leader"])
    return named


def restart_controller(lab: Lab, index: int) -> None:
    """Start controller index again and wait until it answers (its log's end if it does not)."""
    lab.start_controller(index)
    try:
        wait_until(lambda: leaders(lab, [index]), 10, interval=0.2,
                   what=f"controller {index} to answer")
    except (AssertionError, errors.KranError) as exc:
        log = (lab.dir / "logs" / f"controller-{index + 1}.log").read_text(errors="replace")
        raise AssertionError(f"{exc}; the end of its log:\n{log[-3000:]}") from None


def exact(client: Client, kran: Kran, name: str, replicas: int) -> list[dict[str, Any]]:
    """Wait until the service has exactly `replicas` tasks desired running, all running, one per
    slot, and exactly that many running containers; those tasks."""
    def check() -> list[dict[str, Any]] | None:
        tasks = [t for t in client.services.get(name).tasks() if t["DesiredState"] == "running"]
        slots = sorted(t["Slot"] for t in tasks if t["Status"]["State"] == "running")
        if len(tasks) != replicas or slots != list(range(1, replicas + 1)):
            return None
        done = kran("ps", "--format", "{{.Names}}")
        running = [n for n in done.stdout.split() if n.startswith(f"{name}.")]
        return tasks if len(running) == replicas else None
    return wait_until(check, 30, interval=0.2, what=f"{name} to run exactly {replicas} tasks")


def test_exactly_one_leader(clean_lab: Lab) -> None:
    named = leaders(clean_lab, [0, 1, 2])
    assert len(named) == 1
    assert named.pop() in clean_lab.controller_endpoints


def test_a_killed_leader_is_replaced_and_no_task_is_lost_or_doubled(
        clean_lab: Lab, kran: Kran, client: Client) -> None:
    done = kran("service", "create", "-d", "--name", "ha", "--replicas", "6", *FAST,
                "busybox", "sleep", "600")
    assert done.returncode == 0, done.stderr
    before = {t["ID"] for t in exact(client, kran, "ha", 6)}
    [leader] = leaders(clean_lab, [0, 1, 2])
    index = clean_lab.controller_endpoints.index(leader)
    others = [i for i in range(3) if i != index]
    started = time.monotonic()
    clean_lab.kill_controller(index)
    try:
        new = wait_until(lambda: (lambda named: named if len(named) == 1 and leader not in named
                                  and "" not in named else None)(leaders(clean_lab, others)),
                         15, interval=0.1, what="another controller to lead")
        took = time.monotonic() - started
        assert took < ELECTION_BOUND, f"a new leader after {took:.1f} s"
        assert new.pop() in clean_lab.controller_endpoints
        # The new leader rebuilt from etcd: the same six tasks, none lost, none added.
        assert {t["ID"] for t in exact(client, kran, "ha", 6)} == before
        scaled = kran("service", "scale", "ha=8")
        assert scaled.returncode == 0, scaled.stderr
        after = exact(client, kran, "ha", 8)
        assert before < {t["ID"] for t in after}
    finally:
        restart_controller(clean_lab, index)
    assert len(leaders(clean_lab, [0, 1, 2])) == 1


def test_one_etcd_member_down_leaves_the_cluster_serving(clean_lab: Lab, kran: Kran,
                                                         client: Client) -> None:
    clean_lab.kill_etcd(0)
    try:
        # If it led etcd, the other two elect a leader first (about a second).
        wait_until(lambda: kran("service", "ls").returncode == 0, 15, interval=0.2,
                   what="the controllers to reach etcd again")
        done = kran("service", "create", "-d", "--name", "web", "--replicas", "2", *FAST,
                    "busybox", "sleep", "600")
        assert done.returncode == 0, done.stderr
        exact(client, kran, "web", 2)
        scaled = kran("service", "scale", "web=3")
        assert scaled.returncode == 0, scaled.stderr
        exact(client, kran, "web", 3)
        assert len(leaders(clean_lab, [0, 1, 2])) == 1
    finally:
        clean_lab.start_etcd(0)


def test_a_task_whose_container_was_never_made_is_failed_and_replaced(
        clean_lab: Lab, kran: Kran, client: Client) -> None:
    """What a leader that dies between writing a task and creating its container leaves behind."""
    done = kran("service", "create", "-d", "--name", "ha", "--replicas", "2", *FAST,
                "busybox", "sleep", "600")
    assert done.returncode == 0, done.stderr
    exact(client, kran, "ha", 2)
    h1 = node_id(kran, "h1")
    for index in range(3):
        clean_lab.kill_controller(index)
    try:
        forged = asyncio.run(forge_placed_task(clean_lab, "ha", slot=3, node=h1))
    finally:
        for index in range(3):
            restart_controller(clean_lab, index)
    tasks = exact(client, kran, "ha", 3)
    [third] = [t for t in tasks if t["Slot"] == 3]
    assert third["ID"] != forged
    [failed] = [t for t in client.services.get("ha").tasks() if t["ID"] == forged]
    assert failed["DesiredState"] == "shutdown" and failed["Status"]["State"] == "failed"
    assert failed["Status"]["Err"] == "task: its container was never created"


def node_id(kran: Kran, host: str) -> str:
    done = kran("node", "inspect", "--format", "{{.ID}}", host)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def forge_placed_task(lab: Lab, name: str, slot: int, node: str) -> str:
    """Scale the service to `slot` replicas and record a placed task for that slot, as a leader
    does just before it creates the container; the task's id."""
    store = EtcdStore([member.endpoint for member in lab.etcd])
    try:
        service = await ServiceStore(store).resolve(name)
        spec = type(service.spec)()
        spec.CopyFrom(service.spec)
        spec.replicas = slot
        await store.update(service.entry.key, {**service.entry.value, "spec": encode_spec(spec)},
                           service.entry.mod_revision)
        task = Task(new_id(), service.id, slot, new_container_id(), service.digest,
                    service.version, spec.task.image, time.time(), node_id=node,
                    state="assigned", message="scheduled", status_at=time.time())
        await store.put(task.key, task.value())
        return task.id
    finally:
        await store.close()
