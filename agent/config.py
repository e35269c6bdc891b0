"""The agent's flags and its node id.

Flags can also be set in the environment: KRAN_CONTROLLER for
--controller, KRAN_AGENT_<FLAG> for the others. --controller takes one or
more controller addresses, comma separated; the agent fails over between them.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from agent.distribution.registries import (DEFAULT_CERTS_DIRS, DEFAULT_MAX_DOWNLOADS, DEFAULT_MAX_UPLOADS,
                                           RegistryOptions, check_insecure, check_mirror)
from kran import defaults, errors

ENV_PREFIX = "KRAN_AGENT_"
NODE_ID_FILE = "node_id"
_NODE_ID = re.compile(r"^[a-z0-9]{25}$")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class AgentConfig:
    """Everything an agent is started with."""

    controller: str          # one or more host:port, comma separated (see controllers)
    listen: str
    advertise_addr: str
    metrics_addr: str        # "" when metrics are off
    state_dir: Path
    hostname: str
    labels: dict[str, str] = field(default_factory=dict)
    log_level: str = "info"
    cgroup_parent: str = "kran"  # containers' cgroups go under <hierarchy>/<cgroup_parent>/<id>
    registry: RegistryOptions = field(default_factory=RegistryOptions)

    @property
    def controllers(self) -> tuple[str, ...]:
        """The controller addresses, in the order they are tried."""
        return tuple(self.controller.split(","))


def new_node_id() -> str:
    """A random 128-bit id in 25 lowercase base-36 digits, as Swarm's are."""
    number, digits = secrets.randbits(128), []
    while number:
        number, digit = divmod(number, 36)
        digits.append(_DIGITS[digit])
    return "".join(reversed(digits)).rjust(25, "0")


def load_node_id(state_dir: Path) -> str:
    """The node id kept in <state_dir>/node_id, made and saved on first use."""
    path = state_dir / NODE_ID_FILE
    try:
        node_id = path.read_text().strip()
    except FileNotFoundError:
        node_id = new_node_id()
        temporary = path.with_suffix(".tmp")
        temporary.write_text(node_id + "\n")
        os.replace(temporary, path)
        return node_id
    if not _NODE_ID.match(node_id):
        raise errors.FailedPrecondition(
            f"{path} holds {node_id!r}, not a node id (25 lowercase letters or digits); "
            "remove the file to get a new id")
    return node_id


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name.upper(), default)


def _address(value: str, default_port: int, flag: str) -> str:
    try:
        host, port = defaults.split_hostport(value, default_port)
    except ValueError as exc:
        raise errors.InvalidArgument(f"{flag}: {exc}") from None
    return defaults.join_hostport(host, port)


def _controllers(value: str) -> str:
    """Normalise "host[:port][,host[:port]...]", dropping repeats; errors.InvalidArgument if none."""
    addresses = [_address(item, defaults.CONTROLLER_PORT, "--controller")
                 for item in value.split(",") if item.strip()]
    if not addresses:
        raise errors.InvalidArgument("--controller: no controller address given")
    return ",".join(dict.fromkeys(addresses))


def _labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key.strip():
            raise errors.InvalidArgument(f"--label {item!r}: expected key=value")
        labels[key.strip()] = value if sep else ""
    return labels


def _cgroup_parent(value: str) -> str:
    parent = value.strip().strip("/")
    if not parent or any(part in ("", ".", "..") for part in parent.split("/")):
        raise errors.InvalidArgument(
            f"--cgroup-parent {value!r}: expected a cgroup path such as kran or system.slice/kran")
    return parent


def _env_list(name: str) -> list[str]:
    """A repeatable flag's values from the environment: comma-separated."""
    return [item.strip() for item in _env(name, "").split(",") if item.strip()]


def _count(value: str, flag: str) -> int:
    if not value.strip().isdigit() or int(value) < 1:
        raise errors.InvalidArgument(f"{flag} {value!r}: expected a whole number of at least 1")
    return int(value)


def _registry(args: argparse.Namespace) -> RegistryOptions:
    mirrors = args.registry_mirror if args.registry_mirror is not None else _env_list("registry_mirror")
    insecure = args.insecure_registry if args.insecure_registry is not None else _env_list("insecure_registry")
    certs = args.certs_dir if args.certs_dir is not None else _env_list("certs_dir")
    return RegistryOptions(
        mirrors=tuple(dict.fromkeys(check_mirror(m) for m in mirrors)),
        insecure=tuple(dict.fromkeys(check_insecure(i) for i in insecure)),
        certs_dirs=tuple(Path(c).absolute() for c in certs) if certs else DEFAULT_CERTS_DIRS,
        max_downloads=_count(args.max_concurrent_downloads, "--max-concurrent-downloads"),
        max_uploads=_count(args.max_concurrent_uploads, "--max-concurrent-uploads"),
        allow_hub=args.allow_docker_hub)


def parser() -> argparse.ArgumentParser:
    """The argument parser, with defaults taken from the environment."""
    p = argparse.ArgumentParser(
        prog="kran-agent",
        description="kran's per-host agent: this host's images and containers.",
        epilog=f"KRAN_CONTROLLER sets --controller; {ENV_PREFIX}<FLAG> sets the other flags.")
    p.add_argument("--controller", default=os.environ.get("KRAN_CONTROLLER", defaults.DEFAULT_HOST),
                   help="controller gRPC address, or several comma separated to fail over between "
                        "(default %(default)s)")
    p.add_argument("--listen", default=_env("listen", f"0.0.0.0:{defaults.AGENT_PORT}"),
                   help="gRPC address to serve on (default %(default)s)")
    p.add_argument("--advertise-addr", default=_env("advertise_addr", ""),
                   help="address the controller uses to reach this agent "
                        "(default: --listen, with 0.0.0.0 replaced by 127.0.0.1)")
    p.add_argument("--metrics-addr",
                   default=_env("metrics_addr", f"0.0.0.0:{defaults.AGENT_METRICS_PORT}"),
                   help='Prometheus /metrics address; "" or "none" disables (default %(default)s)')
    p.add_argument("--state-dir", default=_env("state_dir", defaults.AGENT_STATE_DIR),
                   help="state directory (node id, images, containers) (default %(default)s)")
    p.add_argument("--hostname", default=_env("hostname", socket.gethostname()),
                   help="node name to report (default: this host's name)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="engine label to report (repeatable)")
    p.add_argument("--cgroup-parent", default=_env("cgroup_parent", "kran"),
                   help="cgroup under which containers' cgroups are made (default %(default)s)")
    p.add_argument("--registry-mirror", action="append", metavar="URL",
                   help="a mirror for docker.io pulls, http(s)://HOST[:PORT] (repeatable, tried in order)")
    p.add_argument("--insecure-registry", action="append", metavar="HOST:PORT",
                   help="a registry reached without certificate checks, or over plain HTTP (repeatable)")
    p.add_argument("--allow-docker-hub", action="store_true",
                   default=_env("allow_docker_hub", "") not in ("", "0", "false"),
                   help="let docker.io mean Docker Hub itself (pulls without a mirror, pushes, logins); "
                        "off by default, so the node reaches only the registries it is given")
    p.add_argument("--certs-dir", action="append", metavar="DIR",
                   help="where HOST:PORT/ca.crt files for registries are (repeatable; default "
                        + " and ".join(str(d) for d in DEFAULT_CERTS_DIRS) + ")")
    p.add_argument("--max-concurrent-downloads", default=_env("max_concurrent_downloads",
                                                              str(DEFAULT_MAX_DOWNLOADS)),
                   help="layers downloaded at once across all pulls (default %(default)s)")
    p.add_argument("--max-concurrent-uploads", default=_env("max_concurrent_uploads", str(DEFAULT_MAX_UPLOADS)),
                   help="layers uploaded at once across all pushes (default %(default)s)")
    p.add_argument("--log-level", default=_env("log_level", "info"),
                   choices=["debug", "info", "warning", "error"])
    return p


def parse(argv: list[str] | None = None) -> AgentConfig:
    """Parse flags into an AgentConfig; errors.InvalidArgument on bad values."""
    args = parser().parse_args(argv)
    listen = _address(args.listen, defaults.AGENT_PORT, "--listen")
    if args.advertise_addr:
        advertise = _address(args.advertise_addr, defaults.split_hostport(listen, 0)[1],
                             "--advertise-addr")
    else:
        host, port = defaults.split_hostport(listen, defaults.AGENT_PORT)
        advertise = defaults.join_hostport(
            {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host), port)
    metrics = args.metrics_addr.strip()
    if not args.hostname.strip():
        raise errors.InvalidArgument("--hostname must not be empty")
    return AgentConfig(
        controller=_controllers(args.controller),
        listen=listen,
        advertise_addr=advertise,
        metrics_addr="" if metrics.lower() in ("", "none") else _address(
            metrics, defaults.AGENT_METRICS_PORT, "--metrics-addr"),
        state_dir=Path(args.state_dir).absolute(),
        hostname=args.hostname.strip(),
        labels=_labels(args.label),
        log_level=args.log_level,
        cgroup_parent=_cgroup_parent(args.cgroup_parent),
        registry=_registry(args),
    )
