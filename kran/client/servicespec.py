"""Service specs from docker-py's keyword arguments, and services and tasks shaped as Docker's.

`service_spec` builds a ServiceSpec; `change_spec` applies keyword arguments
to an existing one (what `Service.update` sends). Durations are nanoseconds,
as in docker-py's RestartPolicy and UpdateConfig; resources use Docker's
{"Limits": {"NanoCPUs", "MemoryBytes"}, "Reservations": {...}}.
`service_attrs` and `task_attrs` shape the API's messages like
`docker service inspect` and `docker inspect <task>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kran import errors
from kran.api.v1 import containers_pb2, services_pb2
from kran.client.config import env_list, label_map, memory_bytes, split_command
from kran.imageinspect import timestamp_rfc3339nano

SECOND = 1_000_000_000

# Keyword arguments of create() and update(), besides image and command.
SPEC_KEYWORDS = frozenset({
    "name", "replicas", "args", "env", "labels", "container_labels", "constraints",
    "placement_strategy", "resources", "restart_policy", "update_config", "rollback_config",
    "workdir", "user", "hostname", "tty", "init", "stop_signal", "stop_grace_period",
})


def _restart(policy: Mapping[str, Any]) -> services_pb2.TaskRestartPolicy:
    return services_pb2.TaskRestartPolicy(
        condition=str(policy.get("Condition") or "any"),
        delay_ns=int(policy.get("Delay", 5 * SECOND)),
        max_attempts=int(policy.get("MaxAttempts") or 0),
        window_ns=int(policy.get("Window") or 0))


def _update(config: Mapping[str, Any]) -> services_pb2.UpdateConfig:
    parallelism = config.get("Parallelism", 1)
    return services_pb2.UpdateConfig(
        parallelism=int(1 if parallelism is None else parallelism),
        delay_ns=int(config.get("Delay") or 0),
        failure_action=str(config.get("FailureAction") or "pause"),
        monitor_ns=int(config.get("Monitor", 5 * SECOND)),
        max_failure_ratio=float(config.get("MaxFailureRatio") or 0.0),
        order=str(config.get("Order") or "stop-first"))


def _resources(spec: services_pb2.ServiceSpec, resources: Mapping[str, Any]) -> None:
    limits = resources.get("Limits") or {}
    reservations = resources.get("Reservations") or {}
    if "NanoCPUs" in limits:
        spec.task.nano_cpus = int(limits["NanoCPUs"])
    if "MemoryBytes" in limits:
        spec.task.memory_bytes = memory_bytes(limits["MemoryBytes"])
    if "NanoCPUs" in reservations:
        spec.placement.reserve_nano_cpus = int(reservations["NanoCPUs"])
    if "MemoryBytes" in reservations:
        spec.placement.reserve_memory_bytes = memory_bytes(reservations["MemoryBytes"])


def change_spec(spec: services_pb2.ServiceSpec, image: str | None = None,
                command: str | Iterable[str] | None = None, **kwargs: Any) -> None:
    """Apply docker-py keyword arguments to spec in place (what is not given stays).

    command replaces the image's entrypoint, args its command (docker's
    Command and Args); env, labels, container_labels and constraints
    replace the whole list or map.
    """
    unknown = set(kwargs) - SPEC_KEYWORDS
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    task = spec.task
    if image is not None:
        task.image = image
    if command is not None:
        del task.entrypoint[:]
        task.entrypoint.extend(split_command(command))
        task.entrypoint_set = True
    if kwargs.get("name") is not None:
        spec.name = kwargs["name"]
    if kwargs.get("replicas") is not None:
        replicas = kwargs["replicas"]
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise errors.InvalidArgument(f"invalid replicas value {replicas!r}: "
                                         "expected a number of tasks, 0 or more")
        spec.replicas = replicas
    if kwargs.get("args") is not None:
        del task.cmd[:]
        task.cmd.extend(split_command(kwargs["args"]))
    if kwargs.get("env") is not None:
        del task.env[:]
        task.env.extend(env_list(kwargs["env"]))
    if kwargs.get("labels") is not None:
        spec.labels.clear()
        spec.labels.update(label_map(kwargs["labels"]))
    if kwargs.get("container_labels") is not None:
        task.labels.clear()
        task.labels.update(label_map(kwargs["container_labels"]))
    if kwargs.get("constraints") is not None:
        del spec.placement.constraints[:]
        spec.placement.constraints.extend(kwargs["constraints"])
    if kwargs.get("placement_strategy") is not None:
        spec.placement.strategy = kwargs["placement_strategy"]
    container_fields = {"workdir": "working_dir", "user": "user", "hostname": "hostname",
                        "tty": "tty", "init": "init", "stop_signal": "stop_signal"}
    for keyword, field in container_fields.items():
        if kwargs.get(keyword) is not None:
            setattr(task, field, kwargs[keyword])
    if kwargs.get("stop_grace_period") is not None:
        task.stop_timeout = max(1, round(int(kwargs["stop_grace_period"]) / SECOND))
    if kwargs.get("resources") is not None:
        _resources(spec, kwargs["resources"])
    if kwargs.get("restart_policy") is not None:
        spec.restart_policy.CopyFrom(_restart(kwargs["restart_policy"]))
    if kwargs.get("update_config") is not None:
        spec.update_config.CopyFrom(_update(kwargs["update_config"]))
    if kwargs.get("rollback_config") is not None:
        spec.rollback_config.CopyFrom(_update(kwargs["rollback_config"]))


def service_spec(image: str, command: str | Iterable[str] | None = None,
                 **kwargs: Any) -> services_pb2.ServiceSpec:
    """A new ServiceSpec (one replica unless told) from docker-py's create() arguments."""
    if not image:
        raise errors.InvalidArgument("an image is required")
    spec = services_pb2.ServiceSpec(replicas=1)
    change_spec(spec, image, command, **kwargs)
    return spec


# -- shaping answers -----------------------------------------------------------


def _policy_attrs(config: services_pb2.UpdateConfig) -> dict[str, Any]:
    return {"Parallelism": config.parallelism, "Delay": config.delay_ns,
            "FailureAction": config.failure_action, "Monitor": config.monitor_ns,
            "MaxFailureRatio": config.max_failure_ratio, "Order": config.order}


def spec_attrs(spec: services_pb2.ServiceSpec) -> dict[str, Any]:
    """A ServiceSpec as `docker service inspect` shows Spec."""
    task: containers_pb2.ContainerConfig = spec.task
    container: dict[str, Any] = {"Image": task.image, "Labels": dict(task.labels)}
    if task.entrypoint_set:
        container["Command"] = list(task.entrypoint)
    if task.cmd:
        container["Args"] = list(task.cmd)
    for key, value in (("Env", list(task.env)), ("Dir", task.working_dir), ("User", task.user),
                       ("Hostname", task.hostname), ("TTY", task.tty), ("Init", task.init),
                       ("StopSignal", task.stop_signal)):
        if value:
            container[key] = value
    if task.stop_timeout:
        container["StopGracePeriod"] = task.stop_timeout * SECOND
    placement: dict[str, Any] = {}
    if spec.placement.constraints:
        placement["Constraints"] = list(spec.placement.constraints)
    if spec.placement.strategy:
        placement["Strategy"] = spec.placement.strategy
    restart = spec.restart_policy
    return {
        "Name": spec.name,
        "Labels": dict(spec.labels),
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": {
                "Limits": {"NanoCPUs": task.nano_cpus, "MemoryBytes": task.memory_bytes},
                "Reservations": {"NanoCPUs": spec.placement.reserve_nano_cpus,
                                 "MemoryBytes": spec.placement.reserve_memory_bytes},
            },
            "RestartPolicy": {"Condition": restart.condition, "Delay": restart.delay_ns,
                              "MaxAttempts": restart.max_attempts, "Window": restart.window_ns},
            "Placement": placement,
        },
        "Mode": {"Replicated": {"Replicas": spec.replicas}},
        "UpdateConfig": _policy_attrs(spec.update_config),
        "RollbackConfig": _policy_attrs(spec.rollback_config),
    }


def service_attrs(service: services_pb2.Service) -> dict[str, Any]:
    """A Service as `docker service inspect` shapes it (with ServiceStatus)."""
    attrs: dict[str, Any] = {
        "ID": service.id,
        "Version": {"Index": service.version},
        "CreatedAt": timestamp_rfc3339nano(service.created_at),
        "UpdatedAt": timestamp_rfc3339nano(service.updated_at),
        "Spec": spec_attrs(service.spec),
    }
    if service.HasField("previous_spec"):
        attrs["PreviousSpec"] = spec_attrs(service.previous_spec)
    if service.HasField("update_status"):
        status = service.update_status
        attrs["UpdateStatus"] = {"State": status.state,
                                 "StartedAt": timestamp_rfc3339nano(status.started_at),
                                 "Message": status.message}
        if status.completed_at.seconds:
            attrs["UpdateStatus"]["CompletedAt"] = timestamp_rfc3339nano(status.completed_at)
    attrs["ServiceStatus"] = {"RunningTasks": service.running_tasks,
                              "DesiredTasks": service.spec.replicas}
    return attrs


def task_attrs(task: services_pb2.Task) -> dict[str, Any]:
    """A Task as `docker inspect <task>` shapes it (with ServiceName and NodeName besides)."""
    status = task.status
    return {
        "ID": task.id,
        "Version": {"Index": task.spec_version},
        "CreatedAt": timestamp_rfc3339nano(task.created_at),
        "ServiceID": task.service_id,
        "ServiceName": task.service_name,
        "Slot": task.slot,
        "NodeID": task.node_id,
        "NodeName": task.node_name,
        "DesiredState": task.desired_state,
        "Spec": {"ContainerSpec": {"Image": task.image}},
        "Status": {
            "Timestamp": timestamp_rfc3339nano(status.timestamp),
            "State": status.state,
            "Message": status.message,
            "Err": status.error,
            "ContainerStatus": {"ContainerID": task.container_id, "ExitCode": status.exit_code},
        },
    }
