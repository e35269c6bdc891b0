"""The thin layer over the generated stubs: one channel, one place for errors.

Every call the SDK makes goes through `APIClient.call` or `APIClient.stream`,
which turn a failed call into a `kran.errors` kind. A controller that cannot
be reached at all becomes `ConnectionFailed`, naming the address.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from typing import Any

import grpc

from kran import errors
from kran.defaults import CONTROLLER_PORT, join_hostport, split_hostport

# How long a connection attempt may take before a call fails. gRPC uses the
# minimum reconnect backoff as its connect timeout (20 s by default).
CONNECT_TIMEOUT_MS = 3000
# How long to wait, after an UNAVAILABLE answer, to learn whether the channel
# is connected (a server said UNAVAILABLE) or not (nobody answered).
_READY_PROBE_SECONDS = 0.2
# Chunks of streamed image tarballs; messages stay far below gRPC's limits.
CHUNK_SIZE = 1 << 20
_MAX_MESSAGE = 64 << 20


class ConnectionFailed(errors.Unavailable):
    """The controller could not be reached at all (nothing answered)."""


def server_said(exc: BaseException) -> bool:
    """Whether exc is a server's answer (as opposed to a client-side refusal)."""
    return isinstance(exc, errors.KranError) and not isinstance(exc, ConnectionFailed) \
        and isinstance(exc.__cause__, grpc.RpcError)


class APIClient:
    """The gRPC stubs of the controller's public services, on one channel.

    `containers`, `images`, `nodes` and `system` are the generated stubs; call them through
    `call()` and `stream()` so that errors come back as `kran.errors` kinds.
    """

    def __init__(self, host: str):
        try:
            hostname, port = split_hostport(host, CONTROLLER_PORT)
        except ValueError as exc:
            raise errors.InvalidArgument(f"invalid controller address {host!r}: {exc}") from None
        self.address = join_hostport(hostname, port)
        self._channel = grpc.insecure_channel(self.address, options=[
            ("grpc.min_reconnect_backoff_ms", CONNECT_TIMEOUT_MS),
            ("grpc.initial_reconnect_backoff_ms", 500),
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
        ])

    # The stubs (and their generated modules) are made when first called for:
    # `kran run` needs only Containers.

    @cached_property
    def containers(self) -> Any:
        """The Containers stub."""
        from kran.api.v1 import containers_pb2_grpc  # noqa: PLC0415 - see above
        return containers_pb2_grpc.ContainersStub(self._channel)

    @cached_property
    def images(self) -> Any:
        """The Images stub."""
        from kran.api.v1 import images_pb2_grpc  # noqa: PLC0415 - see above
        return images_pb2_grpc.ImagesStub(self._channel)

    @cached_property
    def nodes(self) -> Any:
        """The Nodes stub."""
        from kran.api.v1 import nodes_pb2_grpc  # noqa: PLC0415 - see above
        return nodes_pb2_grpc.NodesStub(self._channel)

    @cached_property
    def system(self) -> Any:
        """The System stub."""
        from kran.api.v1 import system_pb2_grpc  # noqa: PLC0415 - see above
        return system_pb2_grpc.SystemStub(self._channel)

    def close(self) -> None:
        """Close the channel; calls made afterwards fail."""
        self._channel.close()

    def call(self, method: Callable[..., Any], request: Any,
             timeout: float | None = None) -> Any:
        """Make a unary or client-streaming call; request may be an iterator."""
        try:
            return method(request, timeout=timeout, wait_for_ready=False)
        except grpc.RpcError as err:
            raise self.error(err) from err

    def stream(self, method: Callable[..., Any], request: Any) -> Iterator[Any]:
        """Make a server-streaming call and yield its messages."""
        responses = None
        try:
            responses = method(request, wait_for_ready=False)
            yield from responses
        except grpc.RpcError as err:
            raise self.error(err) from err
        finally:
            # A consumer that stops early must not leave the call running.
            if responses is not None:
                responses.cancel()

    def error(self, err: grpc.RpcError) -> errors.KranError:
        """The kran error kind for a failed call (ConnectionFailed if nobody answered)."""
        if err.code() == grpc.StatusCode.UNAVAILABLE and not self._connected():
            return ConnectionFailed(
                f"Cannot connect to the kran controller at {self.address}. "
                "Is kran-controller running?")
        return errors.from_rpc_error(err)

    def _connected(self) -> bool:
        ready = grpc.channel_ready_future(self._channel)
        try:
            ready.result(timeout=_READY_PROBE_SECONDS)
        except grpc.FutureTimeoutError:
            ready.cancel()
            return False
        return True


def chunked(header: Any, fileobj: Any, wrap: Callable[[bytes], Any]) -> Iterable[Any]:
    """The requests of an upload: the header message, then the file in chunks."""
    yield header
    while True:
        data = fileobj.read(CHUNK_SIZE)
        if not data:
            return
        yield wrap(data)
