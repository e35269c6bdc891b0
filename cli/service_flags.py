"""The flags of `service create` and `service update`, as docker's, turned into SDK keywords.

Durations are Go's ("5s", "1m30s", "500ms"); sizes and CPUs as `kran run`
takes them. `create_kwargs` builds a whole spec's keywords;
`update_kwargs` applies the given flags to a service's current spec
(--env-add/--env-rm and the other -add/-rm pairs change lists in place).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import click

from cli.flags import CheckedType
from cli.logs import go_duration
from cli.run import env_flag, environment
from kran import errors
from kran.client.config import label_map, memory_bytes, nano_cpus

SECOND = 1_000_000_000
CONDITIONS = ("any", "on-failure", "none")
FAILURE_ACTIONS = ("pause", "continue", "rollback")
ORDERS = ("stop-first", "start-first")
STRATEGIES = ("spread", "binpack", "random")


def duration_ns(value: str) -> int:
    """A Go duration ("5s", "1m30s") as nanoseconds; InvalidArgument if it is not one."""
    seconds = go_duration(value.strip())
    if seconds is None:
        raise errors.InvalidArgument(f'time: invalid duration "{value}"')
    if seconds < 0:
        raise errors.InvalidArgument(f"duration cannot be negative: {value}")
    return round(seconds * SECOND)


def count(value: str) -> int:
    """A count (replicas, parallelism, attempts): a whole number, 0 or more."""
    text = value.strip()
    if not text.isdigit():
        raise errors.InvalidArgument(f'strconv.ParseUint: parsing "{value}": invalid syntax')
    return int(text)


def ratio(value: str) -> float:
    """A failure ratio between 0 and 1."""
    try:
        number = float(value)
    except ValueError:
        raise errors.InvalidArgument(f'strconv.ParseFloat: parsing "{value}": invalid syntax') \
            from None
    if not 0 <= number <= 1:
        raise errors.InvalidArgument("the ratio must be between 0 and 1")
    return number


def choice(allowed: Iterable[str]) -> Callable[[str], str]:
    """A parser that accepts one of allowed."""
    options = tuple(allowed)

    def parse(value: str) -> str:
        if value not in options:
            raise errors.InvalidArgument(f"expected one of {', '.join(options)}")
        return value
    return parse


DURATION = CheckedType("duration", duration_ns)
COUNT = CheckedType("uint", count)


def _policy_options(prefix: str, what: str) -> list[Callable[[Any], Any]]:
    return [
        click.option(f"--{prefix}-parallelism", type=COUNT,
                     help=f"Maximum number of tasks {what} simultaneously (0 to {what} all at "
                          "once) (default 1)."),
        click.option(f"--{prefix}-delay", type=DURATION,
                     help=f"Delay between {what}s (ns|us|ms|s|m|h) (default 0s)."),
        click.option(f"--{prefix}-failure-action",
                     type=CheckedType("string", choice(FAILURE_ACTIONS)),
                     help='Action on failure ("pause", "continue", "rollback") '
                          '(default "pause").'),
        click.option(f"--{prefix}-monitor", type=DURATION,
                     help="Duration after each task update to monitor for failure "
                          "(ns|us|ms|s|m|h) (default 5s)."),
        click.option(f"--{prefix}-max-failure-ratio", type=CheckedType("float", ratio),
                     help="Failure rate to tolerate during an update (default 0)."),
        click.option(f"--{prefix}-order", type=CheckedType("string", choice(ORDERS)),
                     help='Order of operations ("start-first", "stop-first") '
                          '(default "stop-first").'),
    ]


def shared_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The flags create and update share."""
    decorators = [
        click.option("-d", "--detach", is_flag=True,
                     help="Exit immediately instead of waiting for the service to converge."),
        click.option("-q", "--quiet", is_flag=True, help="Suppress progress output."),
        click.option("--replicas", type=COUNT, help="Number of tasks."),
        click.option("--placement-strategy", type=CheckedType("string", choice(STRATEGIES)),
                     help='How tasks are spread over nodes ("spread", "binpack", "random").'),
        click.option("--restart-condition", type=CheckedType("string", choice(CONDITIONS)),
                     help='Restart when condition is met ("none", "on-failure", "any") '
                          '(default "any").'),
        click.option("--restart-delay", type=DURATION,
                     help="Delay between restart attempts (ns|us|ms|s|m|h) (default 5s)."),
        click.option("--restart-max-attempts", type=COUNT,
                     help="Maximum number of restarts before giving up."),
        click.option("--restart-window", type=DURATION,
                     help="Window used to evaluate the restart policy (ns|us|ms|s|m|h)."),
        *_policy_options("update", "update"),
        *_policy_options("rollback", "rollback"),
        click.option("--limit-cpu", type=CheckedType("decimal", nano_cpus), help="Limit CPUs."),
        click.option("--limit-memory", type=CheckedType("bytes", memory_bytes),
                     help="Limit Memory."),
        click.option("--reserve-cpu", type=CheckedType("decimal", nano_cpus),
                     help="Reserve CPUs."),
        click.option("--reserve-memory", type=CheckedType("bytes", memory_bytes),
                     help="Reserve Memory."),
        click.option("-w", "--workdir", help="Working directory inside the container."),
        click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])."),
        click.option("--hostname", help="Container hostname."),
        click.option("--stop-signal", help="Signal to stop the container."),
        click.option("--stop-grace-period", type=DURATION,
                     help="Time to wait before force killing a container (ns|us|ms|s|m|h) "
                          "(default 10s)."),
        click.option("--entrypoint", help="Overwrite the default ENTRYPOINT of the image."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _restart(options: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any] | None:
    pairs = (("restart_condition", "Condition"), ("restart_delay", "Delay"),
             ("restart_max_attempts", "MaxAttempts"), ("restart_window", "Window"))
    given = {key: options[flag] for flag, key in pairs if options.get(flag) is not None}
    return {**base, **given} if given or not base else None


def _policy(options: Mapping[str, Any], prefix: str,
            base: Mapping[str, Any]) -> dict[str, Any] | None:
    pairs = (("parallelism", "Parallelism"), ("delay", "Delay"),
             ("failure_action", "FailureAction"), ("monitor", "Monitor"),
             ("max_failure_ratio", "MaxFailureRatio"), ("order", "Order"))
    given = {key: options[f"{prefix}_{flag}"] for flag, key in pairs
             if options.get(f"{prefix}_{flag}") is not None}
    return {**base, **given} if given or not base else None


def _resources(options: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any] | None:
    limits = {k: v for k, v in (("NanoCPUs", options.get("limit_cpu")),
                                ("MemoryBytes", options.get("limit_memory"))) if v is not None}
    reservations = {k: v for k, v in (("NanoCPUs", options.get("reserve_cpu")),
                                      ("MemoryBytes", options.get("reserve_memory")))
                    if v is not None}
    if not limits and not reservations:
        return None
    return {"Limits": {**base.get("Limits", {}), **limits},
            "Reservations": {**base.get("Reservations", {}), **reservations}}


def _container_fields(options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for flag in ("workdir", "user", "hostname", "stop_signal", "stop_grace_period"):
        if options.get(flag) is not None:
            out[flag] = options[flag]
    return out


def create_kwargs(options: Mapping[str, Any], environ: dict[str, str] | None = None
                  ) -> dict[str, Any]:
    """`service create` flags as ServiceCollection.create() keywords."""
    kwargs: dict[str, Any] = {
        "name": options.get("name") or None,
        "replicas": 1 if options.get("replicas") is None else options["replicas"],
        "args": list(options.get("command") or ()),
        "env": environment(options, environ),
        "labels": label_map(options.get("label") or ()),
        "container_labels": label_map(options.get("container_label") or ()),
        "constraints": list(options.get("constraint") or ()),
        "restart_policy": _restart(options, {}),
        "update_config": _policy(options, "update", {}),
        "rollback_config": _policy(options, "rollback", {}),
        **_container_fields(options),
    }
    if options.get("placement_strategy"):
        kwargs["placement_strategy"] = options["placement_strategy"]
    resources = _resources(options, {})
    if resources is not None:
        kwargs["resources"] = resources
    if options.get("tty"):
        kwargs["tty"] = True
    if options.get("init"):
        kwargs["init"] = True
    if options.get("entrypoint") is not None:
        kwargs["command"] = [options["entrypoint"]] if options["entrypoint"] else []
    return kwargs


def _edited(current: Iterable[str], add: Iterable[str], remove: Iterable[str],
            key: Callable[[str], str] = lambda item: item) -> list[str]:
    """A list with items removed (by key) and added (replacing items with the same key)."""
    gone = {key(item) for item in remove} | {key(item) for item in add}
    return [item for item in current if key(item) not in gone] + list(add)


def _env_key(item: str) -> str:
    return item.partition("=")[0]


def update_kwargs(attrs: Mapping[str, Any], options: Mapping[str, Any],
                  environ: dict[str, str] | None = None) -> dict[str, Any]:
    """`service update` flags applied to a service's current spec (attrs): Service.update() keywords."""
    spec = attrs["Spec"]
    template = spec["TaskTemplate"]
    container = template["ContainerSpec"]
    kwargs: dict[str, Any] = _container_fields(options)
    if options.get("image"):
        kwargs["image"] = options["image"]
    if options.get("replicas") is not None:
        kwargs["replicas"] = options["replicas"]
    if options.get("args") is not None:
        kwargs["args"] = options["args"]
    if options.get("env_add") or options.get("env_rm"):
        added = [env_flag(e, environ) for e in options.get("env_add") or ()]
        kwargs["env"] = _edited(container.get("Env", []), added, options.get("env_rm") or (),
                                _env_key)
    if options.get("constraint_add") or options.get("constraint_rm"):
        kwargs["constraints"] = _edited(template["Placement"].get("Constraints", []),
                                        options.get("constraint_add") or (),
                                        options.get("constraint_rm") or ())
    for flag, current, keyword in (("label", spec.get("Labels", {}), "labels"),
                                   ("container_label", container.get("Labels", {}),
                                    "container_labels")):
        added, removed = options.get(f"{flag}_add") or (), options.get(f"{flag}_rm") or ()
        if added or removed:
            labels = {k: v for k, v in current.items() if k not in set(removed)}
            labels.update(label_map(added))
            kwargs[keyword] = labels
    if options.get("placement_strategy"):
        kwargs["placement_strategy"] = options["placement_strategy"]
    for keyword, value in (
            ("restart_policy", _restart(options, template["RestartPolicy"])),
            ("update_config", _policy(options, "update", spec["UpdateConfig"])),
            ("rollback_config", _policy(options, "rollback", spec["RollbackConfig"])),
            ("resources", _resources(options, template["Resources"]))):
        if value is not None:
            kwargs[keyword] = value
    if options.get("entrypoint") is not None:
        kwargs["command"] = [options["entrypoint"]] if options["entrypoint"] else []
    return kwargs
