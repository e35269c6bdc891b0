"""The leader's decisions for one service (controller.services.planner.plan)."""

from __future__ import annotations

import itertools
import time

from controller.services.planner import HISTORY, NodeView, ServiceView, plan
from controller.services.records import Task, UpdateState
from controller.services.states import Observed, RestartRule, UpdateRule

NOW = 1_000_000.0
NODES = {"n1": NodeView(True, hostname="h1"), "n2": NodeView(True, hostname="h2"),
         "n3": NodeView(True, hostname="h3")}
_ids = itertools.count()


def task(slot: int, state: str = "running", node: str = "n1", digest: str = "d1",
         desired: str = "running", created: float = NOW - 100, **fields) -> Task:
    number = next(_ids)
    running_since = fields.pop("running_since", created + 1 if state == "running" else 0.0)
    return Task(id=f"t{number}", service_id="s", slot=slot, container_id=f"c{number}",
                digest=digest, spec_version=1, image="busybox", created_at=created,
                node_id=node, desired=desired, state=state, running_since=running_since,
                status_at=fields.pop("status_at", created + 1), **fields)


def service(replicas: int = 3, digest: str = "d1", **fields) -> ServiceView:
    return ServiceView(id="s", replicas=replicas, digest=digest, **fields)


def running(*tasks: Task) -> dict[str, Observed]:
    return {t.container_id: Observed("running", sequence=1) for t in tasks}


def test_missing_slots_get_tasks() -> None:
    existing = task(2)
    decided = plan(service(3), [existing], NODES, running(existing), set(), NOW)
    assert sorted(n.slot for n in decided.create) == [1, 3]
    assert not decided.changed and not decided.remove


def test_steady_service_does_nothing() -> None:
    tasks = [task(1), task(2), task(3)]
    decided = plan(service(3), tasks, NODES, running(*tasks), set(), NOW)
    assert not (decided.create or decided.changed or decided.remove or decided.stop)
    assert decided.status is None and decided.wake == float("inf")


def test_scale_down_removes_the_highest_slots() -> None:
    tasks = [task(slot) for slot in range(1, 6)]
    old = task(5, state="failed", desired="shutdown", created=NOW - 200)
    decided = plan(service(3), tasks + [old], NODES, running(*tasks), set(), NOW)
    assert sorted(t.slot for t in decided.remove) == [4, 5, 5]
    assert not decided.create


def test_busy_tasks_are_left_alone_when_scaling_down() -> None:
    tasks = [task(1), task(2)]
    decided = plan(service(1), tasks, NODES, running(*tasks), {tasks[1].id}, NOW)
    assert decided.remove == []


def test_failed_task_restarts_after_the_delay() -> None:
    failed = task(1, state="failed", status_at=NOW - 2, error="task: non-zero exit (1)")
    rule = RestartRule("any", delay=5.0)
    early = plan(service(1, restart=rule), [failed], NODES, {}, set(), NOW)
    assert not early.create and early.wake == NOW + 3
    late = plan(service(1, restart=rule), [failed], NODES, {}, set(), NOW + 3)
    assert [n.slot for n in late.create] == [1]
    [retired] = late.changed
    assert retired.id == failed.id and retired.desired == "shutdown" and not retired.final


def test_restart_conditions() -> None:
    complete = task(1, state="complete", status_at=NOW - 10)
    failed = task(1, state="failed", status_at=NOW - 10)
    for condition, ended, restarts in (("any", complete, True), ("any", failed, True),
                                       ("on-failure", complete, False),
                                       ("on-failure", failed, True), ("none", failed, False)):
        rule = RestartRule(condition, delay=0.0)
        decided = plan(service(1, restart=rule), [ended], NODES, {}, set(), NOW)
        assert bool(decided.create) == restarts, (condition, ended.state)
        if not restarts:
            [last] = decided.changed
            assert last.final and last.desired == "shutdown"


def test_final_slot_stays_empty() -> None:
    last = task(1, state="complete", desired="shutdown", final=True)
    decided = plan(service(1, restart=RestartRule("none")), [last], NODES, {}, set(), NOW)
    assert not decided.create and not decided.changed


def test_max_attempts_within_the_window() -> None:
    rule = RestartRule("any", delay=0.0, max_attempts=2, window=60.0)
    worn = task(1, state="failed", restarts=(NOW - 30, NOW - 20))
    assert not plan(service(1, restart=rule), [worn], NODES, {}, set(), NOW).create
    aged = task(1, state="failed", restarts=(NOW - 90, NOW - 20))
    [new] = plan(service(1, restart=rule), [aged], NODES, {}, set(), NOW).create
    assert new.restarts == (NOW - 20, NOW)


def test_unlimited_restarts_keep_no_history() -> None:
    failed = task(1, state="failed", restarts=())
    [new] = plan(service(1, restart=RestartRule(delay=0.0)), [failed], NODES, {}, set(),
                 NOW).create
    assert new.restarts == ()


def test_tasks_of_a_down_node_are_orphaned_and_replaced_at_once() -> None:
    lost, kept = task(1, node="n3"), task(2, node="n1")
    nodes = {**NODES, "n3": NodeView(False, hostname="h3")}
    decided = plan(service(2, restart=RestartRule(delay=60.0)), [lost, kept], nodes,
                   running(lost, kept), set(), NOW)
    [orphan] = decided.changed
    assert orphan.state == "orphaned" and orphan.desired == "shutdown"
    assert orphan.message == "node h3 is down"
    assert [n.slot for n in decided.create] == [1]
    assert not decided.stop and not decided.purge


def test_tasks_of_an_unknown_node_are_orphaned() -> None:
    lost = task(1, node="gone")
    decided = plan(service(1), [lost], NODES, running(lost), set(), NOW)
    assert decided.changed[0].message == "node gone is down"
    assert len(decided.create) == 1


def test_orphans_lose_their_container_once_the_node_is_back() -> None:
    orphan = task(1, node="n3", state="orphaned", desired="shutdown", created=NOW - 200)
    current = task(1, node="n1")
    decided = plan(service(1), [orphan, current], NODES, running(orphan, current), set(), NOW)
    assert decided.purge == [orphan] and not decided.stop


def test_drained_node_tasks_stop_then_move() -> None:
    moving = task(1, node="n2")
    nodes = {**NODES, "n2": NodeView(True, "drain", "h2")}
    first = plan(service(1), [moving], nodes, running(moving), set(), NOW)
    [retired] = first.changed
    assert retired.desired == "shutdown" and retired.state == "running"
    assert first.stop == [retired]
    assert not first.create  # the slot waits for the old container to stop
    stopped = retired.copy(state="shutdown")
    second = plan(service(1), [stopped], nodes, {stopped.container_id: Observed("exited", 137)},
                  set(), NOW)
    assert [n.slot for n in second.create] == [1]


def test_paused_node_keeps_its_tasks() -> None:
    staying = task(1, node="n2")
    nodes = {**NODES, "n2": NodeView(True, "pause", "h2")}
    decided = plan(service(1), [staying], nodes, running(staying), set(), NOW)
    assert not decided.changed and not decided.create


def test_rolling_update_replaces_one_batch_at_a_time() -> None:
    old = [task(slot, digest="d1") for slot in (1, 2, 3)]
    status = UpdateState("updating", NOW - 1)
    svc = service(3, digest="d2", status=status, update=UpdateRule(parallelism=2, monitor=5.0))
    decided = plan(svc, old, NODES, running(*old), set(), NOW)
    assert sorted(t.slot for t in decided.changed) == [1, 2]
    assert all(t.desired == "shutdown" for t in decided.changed)
    assert sorted(t.slot for t in decided.stop) == [1, 2]
    assert not decided.create  # stop-first: the new tasks wait for the old ones to stop


def test_next_batch_waits_for_monitor_and_delay() -> None:
    started = NOW - 10
    status = UpdateState("updating", started)
    rule = UpdateRule(parallelism=1, monitor=5.0, delay=2.0)
    svc = service(2, digest="d2", status=status, update=rule)
    fresh = task(1, digest="d2", created=NOW - 4, running_since=NOW - 3)
    old = task(2, digest="d1")
    waiting = plan(svc, [fresh, old], NODES, running(fresh, old), set(), NOW)
    assert not waiting.changed and waiting.wake == NOW + 2  # monitor ends at NOW + 2
    delayed = plan(svc, [fresh, old], NODES, running(fresh, old), set(), NOW + 3)
    assert not delayed.changed and delayed.wake == NOW + 4  # then the 2 s delay
    going = plan(svc, [fresh, old], NODES, running(fresh, old), set(), NOW + 4)
    assert [t.slot for t in going.changed] == [2]


def test_update_completes() -> None:
    status = UpdateState("updating", NOW - 20)
    tasks = [task(slot, digest="d2", created=NOW - 10) for slot in (1, 2)]
    decided = plan(service(2, digest="d2", status=status, update=UpdateRule(monitor=1.0)),
                   tasks, NODES, running(*tasks), set(), NOW)
    assert decided.status is not None and decided.status.state == "completed"
    assert decided.status.completed_at == NOW and decided.status.started_at == NOW - 20


def test_failed_new_task_pauses_the_update() -> None:
    status = UpdateState("updating", NOW - 20)
    broken = task(1, digest="d2", state="failed", created=NOW - 10, running_since=NOW - 9,
                  status_at=NOW - 8, error="task: non-zero exit (3)")
    old = task(2, digest="d1")
    decided = plan(service(2, digest="d2", status=status), [broken, old], NODES, running(old),
                   set(), NOW)
    assert decided.status is not None and decided.status.state == "paused"
    assert decided.status.message == (f"update paused due to failure or early termination of "
                                      f"task {broken.id}: task: non-zero exit (3)")
    assert not any(t.slot == 2 for t in decided.changed)


def test_paused_update_replaces_no_old_task() -> None:
    status = UpdateState("paused", NOW - 20, message="...")
    old = [task(1, digest="d1"), task(2, digest="d1")]
    decided = plan(service(2, digest="d2", status=status), old, NODES, running(*old), set(), NOW)
    assert not decided.changed and decided.status is None


def test_failure_action_continue_and_rollback() -> None:
    status = UpdateState("updating", NOW - 20)
    broken = task(1, digest="d2", state="failed", created=NOW - 10, running_since=0.0)
    old = task(2, digest="d1")
    going_on = plan(service(2, digest="d2", status=status,
                            update=UpdateRule(failure_action="continue")),
                    [broken, old], NODES, running(old), set(), NOW)
    assert going_on.status is None and not going_on.rollback
    back = plan(service(2, digest="d2", status=status, has_previous=True,
                        update=UpdateRule(failure_action="rollback")),
                [broken, old], NODES, running(old), set(), NOW)
    assert back.rollback and back.status is not None
    assert back.status.state == "rollback_started"


def test_rollback_uses_rollback_config_and_completes_as_rollback() -> None:
    status = UpdateState("rollback_started", NOW - 20)
    old = [task(slot, digest="bad") for slot in (1, 2, 3)]
    svc = service(3, digest="good", status=status, update=UpdateRule(parallelism=1),
                  rollback=UpdateRule(parallelism=0))
    decided = plan(svc, old, NODES, running(*old), set(), NOW)
    assert len(decided.changed) == 3  # parallelism 0: all at once
    done = [task(slot, digest="good", created=NOW - 10) for slot in (1, 2, 3)]
    finished = plan(svc, done, NODES, running(*done), set(), NOW)
    assert finished.status is not None and finished.status.state == "rollback_completed"


def test_start_first_keeps_the_old_task_until_the_new_one_runs() -> None:
    status = UpdateState("updating", NOW - 20)
    svc = service(1, digest="d2", status=status, update=UpdateRule(order="start-first"))
    old = task(1, digest="d1", created=NOW - 50)
    first = plan(svc, [old], NODES, running(old), set(), NOW)
    assert [n.slot for n in first.create] == [1] and not first.changed
    new = task(1, digest="d2", state="starting", created=NOW - 1)
    waiting = plan(svc, [old, new], NODES, running(old), set(), NOW)
    assert not waiting.changed and not waiting.create
    up = new.copy(state="running", running_since=NOW)
    switched = plan(svc, [old, up], NODES, running(old, up), set(), NOW)
    [retired] = switched.changed
    assert retired.id == old.id and retired.desired == "shutdown"
    assert switched.stop == [retired]


def test_history_keeps_the_last_tasks_of_each_slot() -> None:
    history = [task(1, state="failed", desired="shutdown", created=NOW - 100 + i)
               for i in range(HISTORY + 2)]
    current = task(1, created=NOW)
    decided = plan(service(1), history + [current], NODES, running(current), set(), NOW)
    assert decided.remove == history[:3]


def test_a_retired_container_that_never_started_is_removed() -> None:
    retired = task(1, state="starting", desired="shutdown")
    current = task(1, created=NOW)
    observed = {retired.container_id: Observed("created"), **running(current)}
    decided = plan(service(1), [retired, current], NODES, observed, set(), NOW)
    assert decided.purge == [retired]


def test_plan_is_fast_for_ten_thousand_replicas() -> None:
    tasks = [task(slot, node=f"n{slot % 3 + 1}") for slot in range(1, 10_001)]
    observed = running(*tasks)
    started = time.perf_counter()
    decided = plan(service(10_000), tasks, NODES, observed, set(), NOW)
    assert time.perf_counter() - started < 1.0
    assert not decided.create and not decided.changed


def test_an_update_replaces_tasks_no_node_took_at_once() -> None:
    status = UpdateState("updating", NOW - 1)
    waiting = [task(slot, state="pending", node="", digest="d1") for slot in (1, 2, 3)]
    decided = plan(service(3, digest="d2", status=status), waiting, NODES, {}, set(), NOW)
    assert sorted(t.slot for t in decided.changed) == [1, 2, 3]
    assert sorted(n.slot for n in decided.create) == [1, 2, 3]
