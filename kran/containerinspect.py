"""Docker-shaped views of kran containers: list entries, inspect, status text.

Rendered from the public `Container` message alone, so the SDK, the CLI and a
Docker Engine API server give the same answer. The shapes follow Docker
Engine API 1.50: `GET /containers/json` (summary) and
`GET /containers/{id}/json` (inspect); the status text is moby's
`State.String()`, which dockerd computes when it lists containers.
"""

from __future__ import annotations

import time
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from kran.api.v1 import containers_pb2
from kran.imageinspect import timestamp_rfc3339nano
from kran.units import human_duration

# Statuses in which Docker counts the container's process as running.
_RUNNING = ("running", "paused", "restarting")


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def _unset(ts: Timestamp) -> bool:
    return not ts.seconds and not ts.nanos


def status_text(state: containers_pb2.ContainerState, now: float | None = None) -> str:
    """Docker's STATUS column: "Up 3 seconds", "Exited (0) 5 minutes ago", "Created"..."""
    now = time.time() if now is None else now
    status = state.status
    if status in ("running", "paused"):
        up = "Up " + human_duration(max(0.0, now - _seconds(state.started_at)))
        return up + " (Paused)" if status == "paused" else up
    if status == "restarting":
        ago = human_duration(max(0.0, now - _seconds(state.finished_at)))
        return f"Restarting ({state.exit_code}) {ago} ago"
    if status == "removing":
        return "Removal In Progress"
    if status == "dead":
        return "Dead"
    if _unset(state.started_at):
        return "Created"
    if _unset(state.finished_at):
        return ""
    ago = human_duration(max(0.0, now - _seconds(state.finished_at)))
    return f"Exited ({state.exit_code}) {ago} ago"


def command_text(path: str, args: list[str]) -> str:
    """The COMMAND of `docker ps`: path and args, an arg with a space in single quotes."""
    if not args:
        return path
    quoted = [f"'{arg}'" if " " in arg else arg for arg in args]
    return f"{path} {' '.join(quoted)}"


def state(container: containers_pb2.Container) -> dict[str, Any]:
    """The State object of `docker inspect`."""
    s = container.state
    status = s.status or "created"
    return {
        "Status": status,
        "Running": status in _RUNNING,
        "Paused": status == "paused",
        "Restarting": status == "restarting",
        "OOMKilled": s.oom_killed,
        "Dead": status == "dead",
        "Pid": s.pid,
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": timestamp_rfc3339nano(s.started_at),
        "FinishedAt": timestamp_rfc3339nano(s.finished_at),
    }


def _config(container: containers_pb2.Container) -> dict[str, Any]:
    c = container.config
    doc: dict[str, Any] = {
        # Docker's default hostname is the short id; the runtime uses the same.
        "Hostname": c.hostname or container.id[:12],
        "Domainname": "",
        "User": c.user,
        "Tty": c.tty,
        "OpenStdin": c.open_stdin,
        "StdinOnce": c.stdin_once,
        "Env": list(c.env),
        "Cmd": list(c.cmd) or None,
        "Image": c.image,
        "Volumes": None,
        "WorkingDir": c.working_dir,
        "Entrypoint": list(c.entrypoint) or None,
        "OnBuild": None,
        "Labels": dict(c.labels),
    }
    if c.stop_signal:
        doc["StopSignal"] = c.stop_signal
    if c.stop_timeout:
        doc["StopTimeout"] = c.stop_timeout
    return doc


def _host_config(container: containers_pb2.Container) -> dict[str, Any]:
    c = container.config
    return {
        "LogConfig": {"Type": "json-file", "Config": {}},
        "RestartPolicy": {"Name": c.restart_policy.name or "no",
                          "MaximumRetryCount": c.restart_policy.maximum_retry_count},
        "AutoRemove": c.auto_remove,
        "Init": c.init,
        "Memory": c.memory_bytes,
        "NanoCpus": c.nano_cpus,
        # Docker shows an unset pids limit as null.
        "PidsLimit": c.pids_limit or None,
    }


def inspect(container: containers_pb2.Container) -> dict[str, Any]:
    """The `docker inspect` document of a container, with kran's Node and Placement beside it."""
    return {
        "Id": container.id,
        "Created": timestamp_rfc3339nano(container.created),
        "Path": container.path,
        "Args": list(container.args),
        "State": state(container),
        "Image": container.image_id,
        "Name": "/" + container.name,
        "RestartCount": container.state.restart_count,
        "Driver": "overlayfs",
        "Platform": "linux",
        "HostConfig": _host_config(container),
        "Mounts": [],
        "Config": _config(container),
        "Node": {"ID": container.node_id, "Name": container.node_name},
        "Placement": _placement(container.placement),
    }


def _placement(placement: containers_pb2.Placement) -> dict[str, Any]:
    """Where the container was asked to run (kran's; shaped like a service's placement)."""
    return {
        "Constraints": list(placement.constraints),
        "Reservations": {"NanoCPUs": placement.reserve_nano_cpus,
                         "MemoryBytes": placement.reserve_memory_bytes},
        "Strategy": placement.strategy,
    }


def summary(container: containers_pb2.Container, now: float | None = None) -> dict[str, Any]:
    """The `GET /containers/json` entry (`Created` in unix seconds), with Node."""
    return {
        "Id": container.id,
        "Names": ["/" + container.name],
        "Image": container.config.image or container.image_id,
        "ImageID": container.image_id,
        "Command": command_text(container.path, list(container.args)),
        "Created": container.created.seconds,
        "Ports": [],
        "Labels": dict(container.config.labels),
        "State": container.state.status or "created",
        "Status": status_text(container.state, now),
        "Mounts": [],
        "Node": {"ID": container.node_id, "Name": container.node_name},
    }


def _cpu_stats(sample: containers_pb2.ContainerStats | None) -> dict[str, Any]:
    if sample is None:
        return {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 0}
    return {"cpu_usage": {"total_usage": sample.cpu_usage_ns},
            "system_cpu_usage": sample.system_cpu_ns, "online_cpus": sample.online_cpus}


def stats(sample: containers_pb2.ContainerStats,
          previous: containers_pb2.ContainerStats | None = None) -> dict[str, Any]:
    """A `GET /containers/{id}/stats` sample; previous fills precpu_stats and preread."""
    return {
        "read": timestamp_rfc3339nano(sample.read),
        "preread": timestamp_rfc3339nano(previous.read) if previous else
        timestamp_rfc3339nano(Timestamp()),
        "id": sample.id,
        "name": "/" + sample.name,
        "pids_stats": {"current": sample.pids, "limit": sample.pids_limit},
        "cpu_stats": _cpu_stats(sample),
        "precpu_stats": _cpu_stats(previous),
        "memory_stats": {"usage": sample.memory_usage, "limit": sample.memory_limit},
        "networks": {"eth0": {"rx_bytes": sample.net_rx_bytes,
                              "tx_bytes": sample.net_tx_bytes}},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "read", "value": sample.block_read_bytes},
            {"major": 0, "minor": 0, "op": "write", "value": sample.block_write_bytes},
        ]},
    }

