"""Checking a ServiceSpec and filling in Swarm's defaults.

A spec that Create or Update accepts is complete: every policy carries its
values, so the leader never guesses. Absent policies get Swarm's defaults
(restart any after 5 s; updates one at a time, pause on failure, monitor
5 s, stop-first).
"""

from __future__ import annotations

import re

from controller.scheduler import constraints
from kran import errors, reference
from kran.api.v1 import services_pb2

SECOND = 1_000_000_000
DEFAULT_RESTART_DELAY = 5 * SECOND
DEFAULT_MONITOR = 5 * SECOND
MAX_NAME = 63

# A DNS label, as Swarm requires of service names (they name the tasks' containers too).
_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
CONDITIONS = ("any", "on-failure", "none")
FAILURE_ACTIONS = ("pause", "continue", "rollback")
ORDERS = ("stop-first", "start-first")
STRATEGIES = ("spread", "binpack", "random")


def check_name(name: str) -> str:
    """A service name; InvalidArgument unless it is a DNS label (letters, digits, dashes)."""
    if not _NAME.fullmatch(name):
        raise errors.InvalidArgument(
            f"invalid service name {name!r}: a name must be valid as a DNS name component "
            f"(letters, digits and '-', at most {MAX_NAME} characters)")
    return name


def default_update_config() -> services_pb2.UpdateConfig:
    """Swarm's update and rollback defaults."""
    return services_pb2.UpdateConfig(parallelism=1, failure_action="pause",
                                     monitor_ns=DEFAULT_MONITOR, order="stop-first")


def _check_update(config: services_pb2.UpdateConfig, what: str) -> None:
    if not config.failure_action:
        config.failure_action = "pause"
    if not config.order:
        config.order = "stop-first"
    if config.failure_action not in FAILURE_ACTIONS:
        raise errors.InvalidArgument(
            f"invalid {what} failure action {config.failure_action!r}: "
            f"use {', '.join(FAILURE_ACTIONS)}")
    if config.order not in ORDERS:
        raise errors.InvalidArgument(
            f"invalid {what} order {config.order!r}: use {' or '.join(ORDERS)}")
    if config.delay_ns < 0 or config.monitor_ns < 0:
        raise errors.InvalidArgument(f"{what} delay and monitor cannot be negative")
    if not 0 <= config.max_failure_ratio <= 1:
        raise errors.InvalidArgument(f"{what} max failure ratio must be between 0 and 1")


def normalized(spec: services_pb2.ServiceSpec) -> services_pb2.ServiceSpec:
    """A checked copy of spec with defaults filled in; InvalidArgument names what is wrong."""
    out = services_pb2.ServiceSpec()
    out.CopyFrom(spec)
    if out.name:
        check_name(out.name)
    if not out.task.image:
        raise errors.InvalidArgument("no image given: a service needs an image for its tasks")
    if not reference.is_full_id(out.task.image):
        reference.parse(out.task.image)  # a malformed reference is InvalidArgument
    for key in out.labels:
        if not key:
            raise errors.InvalidArgument("a service label needs a name")
    constraints.parse_all(out.placement.constraints)
    if out.placement.strategy and out.placement.strategy not in STRATEGIES:
        raise errors.InvalidArgument(
            f"invalid placement strategy {out.placement.strategy!r}: use spread, binpack or random")
    if out.placement.reserve_nano_cpus < 0 or out.placement.reserve_memory_bytes < 0:
        raise errors.InvalidArgument("a reservation cannot be negative")
    if out.task.memory_bytes < 0 or out.task.nano_cpus < 0:
        raise errors.InvalidArgument("a limit cannot be negative")
    if out.task.auto_remove:
        raise errors.InvalidArgument("a service's tasks cannot be auto-removed (--rm)")
    if not out.HasField("restart_policy"):
        out.restart_policy.CopyFrom(services_pb2.TaskRestartPolicy(
            condition="any", delay_ns=DEFAULT_RESTART_DELAY))
    policy = out.restart_policy
    policy.condition = policy.condition or "any"
    if policy.condition not in CONDITIONS:
        raise errors.InvalidArgument(
            f"invalid restart condition {policy.condition!r}: use {', '.join(CONDITIONS)}")
    if policy.delay_ns < 0 or policy.window_ns < 0:
        raise errors.InvalidArgument("restart delay and window cannot be negative")
    for field, what in (("update_config", "update"), ("rollback_config", "rollback")):
        if not out.HasField(field):
            getattr(out, field).CopyFrom(default_update_config())
        _check_update(getattr(out, field), what)
    return out

