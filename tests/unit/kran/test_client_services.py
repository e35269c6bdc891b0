"""The SDK's service specs and Docker-shaped answers (kran.client.servicespec)."""

from __future__ import annotations

import pytest

from kran import errors
from kran.api.v1 import services_pb2
from kran.client.servicespec import change_spec, service_attrs, service_spec, task_attrs

SECOND = 1_000_000_000


def test_create_keywords_make_a_spec() -> None:
    spec = service_spec("busybox", "sh", name="web", replicas=4, args=["-c", "sleep 9"],
                        env={"A": "1"}, labels=["tier=front"], container_labels={"c": "1"},
                        constraints=["node.hostname==h1"], placement_strategy="random",
                        resources={"Limits": {"NanoCPUs": SECOND, "MemoryBytes": "64m"},
                                   "Reservations": {"MemoryBytes": 1 << 20}},
                        restart_policy={"Condition": "none"},
                        update_config={"Parallelism": 0, "Monitor": 0, "Order": "start-first"},
                        stop_grace_period=3 * SECOND, workdir="/srv")
    assert list(spec.task.entrypoint) == ["sh"] and spec.task.entrypoint_set
    assert list(spec.task.cmd) == ["-c", "sleep 9"] and list(spec.task.env) == ["A=1"]
    assert dict(spec.labels) == {"tier": "front"} and dict(spec.task.labels) == {"c": "1"}
    assert spec.task.memory_bytes == 64 << 20 and spec.task.nano_cpus == SECOND
    assert spec.placement.reserve_memory_bytes == 1 << 20
    assert spec.placement.strategy == "random"
    assert spec.restart_policy.condition == "none" and spec.restart_policy.delay_ns == 5 * SECOND
    assert (spec.update_config.parallelism, spec.update_config.monitor_ns,
            spec.update_config.order) == (0, 0, "start-first")
    assert spec.task.stop_timeout == 3 and spec.task.working_dir == "/srv"


def test_update_keywords_change_only_what_is_given() -> None:
    spec = service_spec("busybox", name="web", replicas=2, args=["sleep", "9"], env=["A=1"])
    change_spec(spec, replicas=5)
    assert spec.replicas == 5 and list(spec.task.env) == ["A=1"]
    assert list(spec.task.cmd) == ["sleep", "9"]
    change_spec(spec, image="busybox:1", env=[])
    assert spec.task.image == "busybox:1" and list(spec.task.env) == []


def test_bad_keywords() -> None:
    with pytest.raises(TypeError, match="mode"):
        service_spec("busybox", mode="global")
    with pytest.raises(errors.InvalidArgument, match="invalid replicas value"):
        service_spec("busybox", replicas=-1)
    with pytest.raises(errors.InvalidArgument, match="an image is required"):
        service_spec("")


def test_docker_shaped_answers() -> None:
    spec = service_spec("busybox", name="web", replicas=3, constraints=["node.id==x"])
    service = services_pb2.Service(id="s" * 25, spec=spec, previous_spec=spec, version=12,
                                   running_tasks=2)
    service.update_status.state = "updating"
    attrs = service_attrs(service)
    assert attrs["Version"] == {"Index": 12}
    assert attrs["Spec"]["Mode"] == {"Replicated": {"Replicas": 3}}
    assert attrs["Spec"]["TaskTemplate"]["Placement"] == {"Constraints": ["node.id==x"]}
    assert attrs["ServiceStatus"] == {"RunningTasks": 2, "DesiredTasks": 3}
    assert attrs["UpdateStatus"]["State"] == "updating" and "PreviousSpec" in attrs
    task = services_pb2.Task(id="t" * 25, service_id="s" * 25, service_name="web", slot=2,
                             node_name="h1", desired_state="running", container_id="c" * 64,
                             status=services_pb2.TaskStatus(state="failed", error="boom",
                                                            exit_code=3))
    shaped = task_attrs(task)
    assert shaped["Slot"] == 2 and shaped["NodeName"] == "h1"
    assert shaped["Status"]["Err"] == "boom"
    assert shaped["Status"]["ContainerStatus"] == {"ContainerID": "c" * 64, "ExitCode": 3}
