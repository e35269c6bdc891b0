"""The controller's flags; each can also be set as KRAN_CONTROLLER_<FLAG>."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from controller.store.etcd import parse_endpoints
from kran import defaults, errors

ENV_PREFIX = "KRAN_CONTROLLER_"


@dataclass(frozen=True)
class ControllerConfig:
    """Everything a controller is started with."""

    listen: str
    metrics_addr: str        # "" when metrics are off
    state_dir: str
    etcd: list[str]          # empty: run an embedded etcd
    etcd_client_port: int
    etcd_peer_port: int
    node_ttl: int
    log_level: str
    strategy: str = "spread"   # the scheduler's default placement strategy
    leader_ttl: int = 3        # seconds the leader's lease lasts without renewal


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name.upper().replace("-", "_"), default)


def _address(value: str, default_port: int, flag: str) -> str:
    try:
        host, port = defaults.split_hostport(value, default_port)
    except ValueError as exc:
        raise errors.InvalidArgument(f"{flag}: {exc}") from None
    return defaults.join_hostport(host, port)


def parser() -> argparse.ArgumentParser:
    """The argument parser, with defaults taken from the environment."""
    p = argparse.ArgumentParser(
        prog="kran-controller",
        description="kran's control plane: the cluster API, with its state in etcd.",
        epilog=f"Every flag can also be set in the environment as {ENV_PREFIX}<FLAG>, "
               f"e.g. {ENV_PREFIX}NODE_TTL=5.")
    p.add_argument("--listen", default=_env("listen", f"0.0.0.0:{defaults.CONTROLLER_PORT}"),
                   help="gRPC address to serve the API on (default %(default)s)")
    p.add_argument("--metrics-addr",
                   default=_env("metrics_addr", f"0.0.0.0:{defaults.CONTROLLER_METRICS_PORT}"),
                   help='Prometheus /metrics address; "" or "none" disables (default %(default)s)')
    p.add_argument("--state-dir", default=_env("state_dir", defaults.CONTROLLER_STATE_DIR),
                   help="state directory; the embedded etcd keeps its data in <dir>/etcd")
    p.add_argument("--etcd", default=_env("etcd", ""),
                   help="external etcd endpoints host:port[,host:port...]; "
                        "without it an embedded etcd is started")
    p.add_argument("--etcd-client-port", type=int, default=int(_env("etcd_client_port", "2379")),
                   help="embedded etcd client port on 127.0.0.1 (default %(default)s)")
    p.add_argument("--etcd-peer-port", type=int, default=int(_env("etcd_peer_port", "2380")),
                   help="embedded etcd peer port on 127.0.0.1 (default %(default)s)")
    p.add_argument("--node-ttl", type=int, default=int(_env("node_ttl", str(defaults.NODE_TTL_SECONDS))),
                   metavar="SECONDS",
                   help="seconds without a heartbeat before a node is Down (default %(default)s)")
    p.add_argument("--strategy", default=_env("strategy", "spread"),
                   choices=["spread", "binpack", "random"],
                   help="how the scheduler picks among the nodes that fit, unless a request "
                        "says (default %(default)s)")
    p.add_argument("--leader-ttl", type=int, default=int(_env("leader_ttl", "3")),
                   metavar="SECONDS",
                   help="seconds a leader that stops renewing its lease keeps the lead "
                        "(default %(default)s)")
    p.add_argument("--log-level", default=_env("log_level", "info"),
                   choices=["debug", "info", "warning", "error"])
    return p


def parse(argv: list[str] | None = None) -> ControllerConfig:
    """Parse flags into a ControllerConfig; errors.InvalidArgument on bad values."""
    args = parser().parse_args(argv)
    if args.node_ttl < 2:
        raise errors.InvalidArgument("--node-ttl must be at least 2 seconds")
    if args.leader_ttl < 2:
        raise errors.InvalidArgument("--leader-ttl must be at least 2 seconds")
    for flag, port in (("--etcd-client-port", args.etcd_client_port),
                       ("--etcd-peer-port", args.etcd_peer_port)):
        if not 0 < port < 65536:
            raise errors.InvalidArgument(f"{flag}: {port} is not a port number")
    metrics = args.metrics_addr.strip()
    return ControllerConfig(
        listen=_address(args.listen, defaults.CONTROLLER_PORT, "--listen"),
        metrics_addr="" if metrics.lower() in ("", "none") else _address(
            metrics, defaults.CONTROLLER_METRICS_PORT, "--metrics-addr"),
        state_dir=args.state_dir,
        etcd=parse_endpoints(args.etcd) if args.etcd.strip() else [],
        etcd_client_port=args.etcd_client_port,
        etcd_peer_port=args.etcd_peer_port,
        node_ttl=args.node_ttl,
        log_level=args.log_level,
        strategy=args.strategy,
        leader_ttl=args.leader_ttl,
    )
