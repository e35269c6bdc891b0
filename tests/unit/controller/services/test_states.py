"""Task states from container states (controller.services.states)."""

from __future__ import annotations

from controller.services.records import Task
from controller.services.states import (Observed, RestartRule, UpdateRule, gone, observe,
                                        orphaned, rejected)
from kran.api.v1 import services_pb2


def task(state: str = "assigned", desired: str = "running") -> Task:
    return Task(id="t", service_id="s", slot=1, container_id="c", digest="d", spec_version=1,
                image="busybox", created_at=1.0, node_id="n", desired=desired, state=state)


def test_container_states_move_the_task_forward() -> None:
    started = observe(task(), Observed("created"), 10.0)
    assert started.state == "starting" and started.status_at == 10.0
    up = observe(started, Observed("running"), 11.0)
    assert up.state == "running" and up.running_since == 11.0 and up.message == "started"
    assert observe(up, Observed("running"), 12.0) is None
    assert observe(up, Observed("created"), 12.0) is None  # never backwards


def test_exits() -> None:
    done = observe(task("running"), Observed("exited", 0), 5.0)
    assert done.state == "complete" and done.error == ""
    failed = observe(task("running"), Observed("exited", 3), 5.0)
    assert failed.state == "failed" and failed.error == "task: non-zero exit (3)"
    assert failed.exit_code == 3
    assert observe(failed, Observed("running"), 6.0) is None


def test_a_retired_task_that_stops_is_shut_down() -> None:
    stopped = observe(task("running", desired="shutdown"), Observed("exited", 137), 5.0)
    assert stopped.state == "shutdown" and stopped.error == ""


def test_dead_and_gone_containers_fail_the_task() -> None:
    dead = observe(task("running"), Observed("dead", error="container is gone from its node"), 1)
    assert dead.state == "failed" and dead.error == "task: container is gone from its node"
    lost = gone(task("running"), 1.0)
    assert lost.state == "failed" and lost.error == "task: container is gone"
    never = gone(task("assigned"), 1.0, "its container was never created")
    assert never.error == "task: its container was never created"
    assert gone(task("failed"), 1.0) is None
    assert gone(task("running", desired="shutdown"), 1.0).state == "shutdown"


def test_rejected_and_orphaned() -> None:
    refused = rejected(task("assigned"), 1.0, "No such image: nope:latest")
    assert refused.state == "rejected" and refused.error == "task: No such image: nope:latest"
    lost = orphaned(task("running"), 2.0, "node h3 is down")
    assert (lost.state, lost.desired, lost.message) == ("orphaned", "shutdown", "node h3 is down")


def test_policies_from_protos() -> None:
    rule = RestartRule.from_proto(services_pb2.TaskRestartPolicy(
        condition="on-failure", delay_ns=1_500_000_000, max_attempts=3, window_ns=60 * 10**9))
    assert rule == RestartRule("on-failure", 1.5, 3, 60.0)
    assert RestartRule.from_proto(services_pb2.TaskRestartPolicy()).condition == "any"
    update = UpdateRule.from_proto(services_pb2.UpdateConfig(parallelism=0, monitor_ns=10**9))
    assert update.failure_action == "pause" and update.order == "stop-first"
    assert update.batch(7) == 7 and UpdateRule(parallelism=2).batch(7) == 2
