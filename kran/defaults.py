"""Default ports, paths and environment names (DESIGN.md, "Default ports")."""

from __future__ import annotations

CONTROLLER_PORT = 7640
CONTROLLER_METRICS_PORT = 9640
AGENT_PORT = 7641
AGENT_METRICS_PORT = 9641

AGENT_STATE_DIR = "/var/lib/kran"
CONTROLLER_STATE_DIR = "/var/lib/kran"
RUN_DIR = "/run/kran"

HOST_ENV = "KRAN_HOST"
CONTEXT_ENV = "KRAN_CONTEXT"
DEFAULT_HOST = f"127.0.0.1:{CONTROLLER_PORT}"

NODE_TTL_SECONDS = 10


def split_hostport(value: str, default_port: int) -> tuple[str, int]:
    """Split "host[:port]" (IPv6 in brackets) into host and port.

    Raises ValueError for an address that cannot be parsed.
    """
    value = value.strip()
    if value.startswith("tcp://"):
        value = value[len("tcp://"):]
    if not value:
        raise ValueError("empty address")
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""
    if not port:
        return host or "0.0.0.0", default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid port in address {value!r}")
    return host or "0.0.0.0", int(port)


def join_hostport(host: str, port: int) -> str:
    """The inverse of split_hostport, bracketing IPv6 hosts."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
