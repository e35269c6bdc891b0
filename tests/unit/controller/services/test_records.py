"""Service and task records, and spec checking (controller.services.records, .specs)."""

from __future__ import annotations

import re

import pytest

from controller.services import specs
from controller.services.records import (ServiceRecord, Task, UpdateState, container_name,
                                         new_id, service_value, task_config, template_digest)
from controller.store import Entry
from kran import errors
from kran.api.v1 import containers_pb2, services_pb2


def spec(**fields) -> services_pb2.ServiceSpec:
    fields.setdefault("replicas", 2)
    return services_pb2.ServiceSpec(
        name="web", task=containers_pb2.ContainerConfig(image="busybox", cmd=["sleep", "9"]),
        **fields)


def test_ids_are_swarm_shaped() -> None:
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100 and all(re.fullmatch(r"[a-z0-9]{25}", i) for i in ids)


def test_digest_follows_the_template_only() -> None:
    base = spec()
    scaled = spec()
    scaled.replicas, scaled.labels["tier"] = 9, "front"
    assert template_digest(base, 0) == template_digest(scaled, 0)
    changed = spec()
    changed.task.env.append("X=1")
    assert template_digest(base, 0) != template_digest(changed, 0)
    placed = spec()
    placed.placement.constraints.append("node.hostname==h1")
    assert template_digest(base, 0) != template_digest(placed, 0)
    assert template_digest(base, 0) != template_digest(base, 1)  # --force


def test_service_record_round_trip() -> None:
    status = UpdateState("updating", 10.0, 0.0, "update in progress")
    value = service_value("s" * 25, spec(), spec(replicas=1), 1.5, 2.5, status, 0)
    record = ServiceRecord.from_entry(Entry("services/" + "s" * 25, value, 7, 9))
    assert record.name == "web" and record.version == 9 and record.update_status == status
    message = record.to_proto(running_tasks=2)
    assert message.spec.replicas == 2 and message.previous_spec.replicas == 1
    assert message.update_status.state == "updating" and message.running_tasks == 2
    assert message.created_at.ToNanoseconds() == 1_500_000_000


def test_task_round_trip_and_proto() -> None:
    task = Task("t" * 25, "s" * 25, 3, "c" * 64, "d", 9, "busybox", 5.0, node_id="n",
                state="failed", error="task: non-zero exit (1)", exit_code=1, status_at=6.0,
                restarts=(4.0,))
    assert Task.from_value(task.value()) == task
    message = task.to_proto("web", "h1")
    assert (message.slot, message.node_name, message.status.error) == (
        3, "h1", "task: non-zero exit (1)")
    assert message.status.timestamp.ToNanoseconds() == 6_000_000_000


def test_task_config_labels_and_no_restart() -> None:
    template = spec()
    template.task.restart_policy.name = "always"
    template.task.labels["mine"] = "yes"
    value = service_value("s" * 25, template, None, 1.0, 1.0, UpdateState(), 0)
    record = ServiceRecord.from_entry(Entry("services/x", value, 1, 1))
    task = Task("t" * 25, "s" * 25, 2, "c" * 64, record.digest, 1, "busybox", 1.0)
    config = task_config(record, task)
    assert not config.HasField("restart_policy") and config.labels["mine"] == "yes"
    assert config.labels["com.kran.service.name"] == "web"
    assert config.labels["com.kran.task.slot"] == "2"
    assert container_name("web", 2, task.id) == f"web.2.{task.id}"


def test_specs_get_swarm_defaults() -> None:
    checked = specs.normalized(spec())
    assert checked.restart_policy.condition == "any"
    assert checked.restart_policy.delay_ns == 5 * specs.SECOND
    assert checked.update_config.parallelism == 1
    assert checked.update_config.monitor_ns == 5 * specs.SECOND
    assert checked.rollback_config.failure_action == "pause"
    assert checked.update_config.order == "stop-first"
    given = spec(update_config=services_pb2.UpdateConfig(parallelism=0, monitor_ns=0))
    kept = specs.normalized(given)
    assert kept.update_config.parallelism == 0 and kept.update_config.monitor_ns == 0


@pytest.mark.parametrize("change, message", [
    (lambda s: setattr(s, "name", "bad_name"), "valid as a DNS name component"),
    (lambda s: setattr(s, "name", "-web"), "valid as a DNS name component"),
    (lambda s: s.task.ClearField("image"), "no image given"),
    (lambda s: s.task.__setattr__("image", "UPPER"), "invalid reference format"),
    (lambda s: s.placement.constraints.append("node.zone==a"), "unknown key"),
    (lambda s: s.placement.constraints.append("node.hostname=h1"), "expected KEY==VALUE"),
    (lambda s: setattr(s.placement, "strategy", "tightest"), "invalid placement strategy"),
    (lambda s: setattr(s.restart_policy, "condition", "always"), "invalid restart condition"),
    (lambda s: setattr(s.update_config, "failure_action", "panic"), "invalid update failure"),
    (lambda s: setattr(s.rollback_config, "order", "random"), "invalid rollback order"),
    (lambda s: setattr(s.task, "auto_remove", True), "cannot be auto-removed"),
])
def test_bad_specs_are_refused(change, message) -> None:
    bad = spec()
    change(bad)
    with pytest.raises(errors.InvalidArgument, match=message):
        specs.normalized(bad)
