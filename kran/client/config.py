"""From docker-py's keyword arguments to a `ContainerConfig`, checking each value.

`ContainerCollection.create` and the `kran run`/`create` flags both end here,
so a value means the same and is refused with the same words either way.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from kran import errors
from kran.api.v1 import containers_pb2
from kran.units import ram_in_bytes

RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")

# The keyword arguments create() takes besides image, command and name.
CONFIG_KEYWORDS = frozenset({
    "entrypoint", "environment", "working_dir", "user", "hostname", "labels", "tty",
    "stdin_open", "stdin_once", "mem_limit", "nano_cpus", "pids_limit", "restart_policy",
    "init", "auto_remove", "stop_signal", "stop_timeout",
})


# The keyword arguments that say where a container runs rather than how.
PLACEMENT_KEYWORDS = frozenset({"constraints", "reserve_cpus", "reserve_memory"})


def split_command(value: str | Iterable[str] | None) -> list[str]:
    """A command as a list: a string is split the way a shell would (docker-py)."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise errors.InvalidArgument(f"invalid command {value!r}: {exc}") from None
    return [str(part) for part in value]


def env_list(environment: Mapping[str, Any] | Iterable[str] | None) -> list[str]:
    """Environment as "K=V" strings; a mapping's None value leaves "K" unset."""
    if environment is None:
        return []
    if isinstance(environment, Mapping):
        return [k if v is None else f"{k}={v}" for k, v in environment.items()]
    out = []
    for item in environment:
        if not item or item.startswith("="):
            raise errors.InvalidArgument(f"invalid environment variable: {item}")
        out.append(item)
    return out


def label_map(labels: Mapping[str, str] | Iterable[str] | None) -> dict[str, str]:
    """Labels as a map: "K=V" strings or "K" (an empty value), as Docker reads them."""
    if labels is None:
        return {}
    if isinstance(labels, Mapping):
        return {str(k): str(v) for k, v in labels.items()}
    out = {}
    for item in labels:
        key, _, value = item.partition("=")
        if not key:
            raise errors.InvalidArgument(f"invalid label '{item}': empty name")
        out[key] = value
    return out


def memory_bytes(value: int | str | None) -> int:
    """A memory limit: bytes, or Docker's size syntax ("512m", "1g")."""
    if value is None or value == "":
        return 0
    if isinstance(value, int):
        size = value
    else:
        try:
            size = ram_in_bytes(str(value))
        except ValueError as exc:
            raise errors.InvalidArgument(str(exc)) from None
    if size < 0:
        raise errors.InvalidArgument(f"invalid memory limit: {value}")
    return size


def nano_cpus(value: str | float | int) -> int:
    """--cpus as nano CPUs: "1.5" -> 1500000000, refusing more than 9 decimals (Docker)."""
    try:
        cpus = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise errors.InvalidArgument(f"failed to parse {value} as a rational number") from None
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise errors.InvalidArgument("value is too precise")
    if nano < 0:
        raise errors.InvalidArgument(f"invalid CPU count: {value}")
    return int(nano)


def parse_restart_policy(text: str) -> containers_pb2.RestartPolicy:
    """--restart NAME[:MAX_RETRIES], with Docker's messages for what it refuses."""
    if not text:
        return containers_pb2.RestartPolicy()
    name, colon, retries = text.partition(":")
    if colon and not name:
        raise errors.InvalidArgument(
            "invalid restart policy format: no policy provided before colon")
    count = 0
    if retries:
        try:
            count = int(retries)
        except ValueError:
            raise errors.InvalidArgument(
                "invalid restart policy format: maximum retry count must be an integer") from None
    return restart_policy({"Name": name, "MaximumRetryCount": count})


def restart_policy(policy: Mapping[str, Any] | None) -> containers_pb2.RestartPolicy:
    """docker-py's {"Name": ..., "MaximumRetryCount": N}, checked as dockerd does."""
    if not policy:
        return containers_pb2.RestartPolicy()
    name = str(policy.get("Name") or "no")
    count = int(policy.get("MaximumRetryCount") or 0)
    if name not in RESTART_POLICIES:
        raise errors.InvalidArgument(
            f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', "
            "'on-failure', or 'unless-stopped'")
    if count < 0:
        raise errors.InvalidArgument(
            "invalid restart policy: maximum retry count cannot be negative")
    if count and name != "on-failure":
        raise errors.InvalidArgument(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'")
    return containers_pb2.RestartPolicy(name=name, maximum_retry_count=count)


def placement(constraints: str | Iterable[str] | None = None,
              reserve_cpus: str | float | int | Fraction | None = None,
              reserve_memory: int | str | None = None) -> containers_pb2.Placement:
    """Where a container may run and what it reserves there.

    constraints: "node.hostname==h2", "node.labels.zone!=a", ... (checked by
    the controller); reserve_cpus: CPUs (1.5, "0.5"); reserve_memory: bytes or
    Docker's size syntax ("512m").
    """
    if isinstance(constraints, str):
        constraints = [constraints]
    return containers_pb2.Placement(
        constraints=list(constraints or ()),
        reserve_nano_cpus=nano_cpus(reserve_cpus) if reserve_cpus else 0,
        reserve_memory_bytes=memory_bytes(reserve_memory))


def create_request(image: str, command: str | Iterable[str] | None = None,
                   name: str | None = None, node: str | None = None,
                   **kwargs: Any) -> containers_pb2.CreateContainerRequest:
    """The CreateContainerRequest for docker-py's create() arguments.

    The placement keywords (constraints, reserve_cpus, reserve_memory, see
    `placement`) go to the request's placement, the others to its config
    (`container_config`); node pins the container to a node.
    """
    chosen = {key: kwargs.pop(key) for key in PLACEMENT_KEYWORDS if key in kwargs}
    return containers_pb2.CreateContainerRequest(
        name=name or "", node=node or "", config=container_config(image, command, **kwargs),
        placement=placement(**chosen))


def container_config(image: str, command: str | Iterable[str] | None = None,
                     **kwargs: Any) -> containers_pb2.ContainerConfig:
    """The ContainerConfig for docker-py's create() arguments.

    entrypoint, environment (dict or ["K=V"]), working_dir, user, hostname,
    labels (dict or ["K=V"]), tty, stdin_open, stdin_once, mem_limit (bytes or
    "512m"), nano_cpus, pids_limit, restart_policy ({"Name", "MaximumRetryCount"}),
    init, auto_remove, stop_signal, stop_timeout. Unknown keywords are a TypeError,
    as in Python calls.
    """
    unknown = set(kwargs) - CONFIG_KEYWORDS
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    if not image:
        raise errors.InvalidArgument("an image is required")
    entrypoint = kwargs.get("entrypoint")
    pids = kwargs.get("pids_limit") or 0
    if pids < 0:
        # Docker treats any negative limit as "unlimited".
        pids = 0
    return containers_pb2.ContainerConfig(
        image=image,
        cmd=split_command(command),
        entrypoint=split_command(entrypoint),
        entrypoint_set=entrypoint is not None,
        env=env_list(kwargs.get("environment")),
        working_dir=kwargs.get("working_dir") or "",
        user=kwargs.get("user") or "",
        hostname=kwargs.get("hostname") or "",
        labels=label_map(kwargs.get("labels")),
        tty=bool(kwargs.get("tty")),
        open_stdin=bool(kwargs.get("stdin_open")),
        stdin_once=bool(kwargs.get("stdin_once")),
        memory_bytes=memory_bytes(kwargs.get("mem_limit")),
        nano_cpus=int(kwargs.get("nano_cpus") or 0),
        pids_limit=pids,
        restart_policy=restart_policy(kwargs.get("restart_policy")),
        init=bool(kwargs.get("init")),
        auto_remove=bool(kwargs.get("auto_remove")),
        stop_signal=kwargs.get("stop_signal") or "",
        stop_timeout=int(kwargs.get("stop_timeout") or 0),
    )
