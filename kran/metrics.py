"""Metrics every kran process serves, and the HTTP endpoint for them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from kran.defaults import split_hostport

UP = Gauge("kran_up", "1 while this kran process is serving", ["component"])

RPC_SECONDS = Histogram(
    "kran_grpc_server_handling_seconds",
    "Time to handle a gRPC call, streams until their end",
    ["grpc_method", "grpc_code"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RPC_HANDLED = Counter(
    "kran_grpc_server_handled_total",
    "gRPC calls handled, by method and status code",
    ["grpc_method", "grpc_code"],
)


def serve_metrics(address: str, default_port: int) -> None:
    """Serve /metrics over HTTP on address ("host:port") in a daemon thread."""
    host, port = split_hostport(address, default_port)
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise OSError(f"cannot serve metrics on {address}: {exc.strerror or exc}") from None
