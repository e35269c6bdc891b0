"""The thin layer over the generated stubs: the controllers' channels, one place for errors.

Every call the SDK makes goes through `APIClient.call` or `APIClient.stream`,
which turn a failed call into a `kran.errors` kind. The client may know
several controller endpoints ("a:7640,b:7640"): calls go to the current
one, and when nobody answers there the same call is made on the next
(unary and client-streaming calls whose request can be sent again, server
streams that failed before their first message), and the one that answered
becomes current. When no endpoint answers the call fails with
`ConnectionFailed`, naming the addresses tried.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
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
# Messages of a request stream kept to send again on another endpoint: the
# header and a chunk or so. A call that fails later is not repeated.
_REPLAY_MESSAGES = 4


class ConnectionFailed(errors.Unavailable):
    """The controller could not be reached at all (nothing answered)."""


def server_said(exc: BaseException) -> bool:
    """Whether exc is a server's answer (as opposed to a client-side refusal)."""
    return isinstance(exc, errors.KranError) and not isinstance(exc, ConnectionFailed) \
        and isinstance(exc.__cause__, grpc.RpcError)


def parse_hosts(hosts: str | Sequence[str]) -> list[str]:
    """Controller endpoints from "host[:port][,host[:port]...]" or a list of them, normalised.

    Repeats are dropped; errors.InvalidArgument for a bad address or none.
    """
    items = hosts.split(",") if isinstance(hosts, str) else [
        part for host in hosts for part in str(host).split(",")]
    endpoints: list[str] = []
    for item in items:
        if not item.strip():
            continue
        try:
            hostname, port = split_hostport(item, CONTROLLER_PORT)
        except ValueError as exc:
            raise errors.InvalidArgument(
                f"invalid controller address {item.strip()!r}: {exc}") from None
        endpoint = join_hostport(hostname, port)
        if endpoint not in endpoints:
            endpoints.append(endpoint)
    if not endpoints:
        raise errors.InvalidArgument("no controller address given")
    return endpoints


class _Method:
    """A stub's method that calls whichever endpoint is current (grpc's multicallable API)."""

    def __init__(self, endpoints: _Endpoints, kind: str, path: str, args: tuple, kwargs: dict):
        self._endpoints = endpoints
        self._make = lambda channel: getattr(channel, kind)(path, *args, **kwargs)
        self._made: dict[int, Any] = {}

    def on(self, index: int) -> Any:
        """The real multicallable on endpoint index."""
        made = self._made.get(index)
        if made is None:
            made = self._made[index] = self._make(self._endpoints.channel(index))
        return made

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.on(self._endpoints.current)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:   # future, with_call
        return getattr(self.on(self._endpoints.current), name)


class _Endpoints:
    """A channel per controller endpoint, made when first used, seen by the stubs as one channel."""

    def __init__(self, addresses: list[str]):
        self.addresses = addresses
        self.current = 0
        self._channels: dict[int, grpc.Channel] = {}

    def channel(self, index: int) -> grpc.Channel:
        """The channel to endpoint index."""
        channel = self._channels.get(index)
        if channel is None:
            channel = self._channels[index] = grpc.insecure_channel(self.addresses[index], options=[
                ("grpc.min_reconnect_backoff_ms", CONNECT_TIMEOUT_MS),
                ("grpc.initial_reconnect_backoff_ms", 500),
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
            ])
        return channel

    def unary_unary(self, path: str, *args: Any, **kwargs: Any) -> _Method:
        return _Method(self, "unary_unary", path, args, kwargs)

    def unary_stream(self, path: str, *args: Any, **kwargs: Any) -> _Method:
        return _Method(self, "unary_stream", path, args, kwargs)

    def stream_unary(self, path: str, *args: Any, **kwargs: Any) -> _Method:
        return _Method(self, "stream_unary", path, args, kwargs)

    def stream_stream(self, path: str, *args: Any, **kwargs: Any) -> _Method:
        return _Method(self, "stream_stream", path, args, kwargs)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()


class _Replayable:
    """A request stream whose first few messages can be sent again on another endpoint."""

    def __init__(self, messages: Iterable[Any]):
        self._source = iter(messages)
        self._taken: list[Any] = []
        self._position = 0
        self.replayable = True

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._position < len(self._taken):
            self._position += 1
            return self._taken[self._position - 1]
        message = next(self._source)
        if len(self._taken) < _REPLAY_MESSAGES:
            self._taken.append(message)
            self._position += 1
        else:
            self.replayable = False
        return message

    def rewind(self) -> bool:
        """Start again from the first message; False when too many were sent to do that."""
        self._position = 0
        return self.replayable


def _prepared(request: Any) -> Any:
    """request as sent: a message as it is, a request stream made replayable."""
    return request if hasattr(request, "SerializeToString") else _Replayable(request)


def _can_resend(request: Any) -> bool:
    return not isinstance(request, _Replayable) or request.rewind()


class APIClient:
    """The gRPC stubs of the controllers' public services, over one channel per endpoint.

    host: "host[:port]", several separated by commas, or a list of them.
    `containers`, `images`, `nodes` and `system` are the generated stubs; call them through
    `call()` and `stream()` so that errors come back as `kran.errors` kinds and an
    endpoint that does not answer is passed over.
    """

    def __init__(self, host: str | Sequence[str]):
        self.addresses = parse_hosts(host)
        self._endpoints = _Endpoints(self.addresses)
        # What the stubs are made on: it sends each call to the current endpoint.
        self._channel: Any = self._endpoints

    @property
    def address(self) -> str:
        """The current controller endpoint, host:port (the one that answered last)."""
        return self.addresses[self._endpoints.current]

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
    def services(self) -> Any:
        """The Services stub."""
        from kran.api.v1 import services_pb2_grpc  # noqa: PLC0415 - see above
        return services_pb2_grpc.ServicesStub(self._channel)

    @cached_property
    def system(self) -> Any:
        """The System stub."""
        from kran.api.v1 import system_pb2_grpc  # noqa: PLC0415 - see above
        return system_pb2_grpc.SystemStub(self._channel)

    @cached_property
    def events(self) -> Any:
        """The Events stub."""
        from kran.api.v1 import events_pb2_grpc  # noqa: PLC0415 - see above
        return events_pb2_grpc.EventsStub(self._channel)

    def close(self) -> None:
        """Close the channels; calls made afterwards fail."""
        self._endpoints.close()

    def call(self, method: Callable[..., Any], request: Any,
             timeout: float | None = None) -> Any:
        """Make a unary or client-streaming call; request may be an iterator."""
        request = _prepared(request)
        tried: list[int] = []
        while True:
            index = self._endpoints.current
            try:
                return method(request, timeout=timeout, wait_for_ready=False)
            except grpc.RpcError as err:
                if not self._unreachable(err, index):
                    raise errors.from_rpc_error(err) from err
                tried.append(index)
                if self._move_on(tried) and _can_resend(request):
                    continue
                raise self._connection_failed(tried) from err

    def stream(self, method: Callable[..., Any], request: Any) -> Iterator[Any]:
        """Make a server-streaming call and yield its messages."""
        return self._stream(method, request, None)

    def open_stream(self, method: Callable[..., Any], request: Any) -> OpenStream:
        """Make a server-streaming call now: return once the server has sent its response headers.

        A server that sends them once it is ready (Events: once its start
        is fixed) lets the caller know that nothing after that is missed.
        """
        return OpenStream(self, method, request)

    def _stream(self, method: Callable[..., Any], request: Any,
                opened: Callable[[Any], None] | None) -> Iterator[Any]:
        """The messages of a server stream; with opened, first None once headers came.

        opened is given each call made (there may be one per endpoint tried).
        """
        headers = opened is not None
        tried: list[int] = []
        while True:
            index = self._endpoints.current
            responses = None
            received = False
            try:
                responses = method(request, wait_for_ready=False)
                if opened is not None:
                    opened(responses)
                if headers:
                    responses.initial_metadata()
                    if not responses.done() or responses.code() == grpc.StatusCode.OK:
                        headers = False
                        yield None
                for message in responses:
                    received = True
                    yield message
                return
            except grpc.RpcError as err:
                if not self._unreachable(err, index):
                    raise errors.from_rpc_error(err) from err
                tried.append(index)
                if self._move_on(tried) and not received:
                    continue
                raise self._connection_failed(tried) from err
            finally:
                # A consumer that stops early must not leave the call running.
                if responses is not None:
                    responses.cancel()

    def _unreachable(self, err: grpc.RpcError, index: int) -> bool:
        """Whether a failed call on endpoint index failed because nobody answered there."""
        return err.code() == grpc.StatusCode.UNAVAILABLE and not self._connected(index)

    def _move_on(self, tried: list[int]) -> bool:
        """Make the next endpoint not yet tried current; False when every one was tried.

        The next call goes there even when this one cannot be made again.
        """
        untried = [i for i in range(len(self.addresses)) if i not in tried]
        if not untried:
            return False
        following = [i for i in untried if i > tried[-1]]
        self._endpoints.current = following[0] if following else untried[0]
        return True

    def _connection_failed(self, tried: Sequence[int]) -> ConnectionFailed:
        where = [self.addresses[i] for i in tried]
        if len(where) == 1:
            return ConnectionFailed(f"Cannot connect to the kran controller at {where[0]}. "
                                    "Is kran-controller running?")
        return ConnectionFailed(f"Cannot connect to the kran controller at any of "
                                f"{', '.join(where)}. Is kran-controller running?")

    def error(self, err: grpc.RpcError) -> errors.KranError:
        """The kran error kind for a failed call on the current endpoint (ConnectionFailed if nobody answered)."""
        index = self._endpoints.current
        if self._unreachable(err, index):
            return self._connection_failed([index])
        return errors.from_rpc_error(err)

    def _connected(self, index: int) -> bool:
        ready = grpc.channel_ready_future(self._endpoints.channel(index))
        try:
            ready.result(timeout=_READY_PROBE_SECONDS)
        except grpc.FutureTimeoutError:
            ready.cancel()
            return False
        return True


class OpenStream:
    """A server stream made by APIClient.open_stream: iterate it for the messages.

    cancel() ends it from any thread; the iteration then simply stops.
    """

    def __init__(self, api: APIClient, method: Callable[..., Any], request: Any):
        self._call: Any = None
        self._cancelled = threading.Event()
        self._messages = api._stream(method, request, self._opened)
        next(self._messages)  # up to the headers; a failed call raises here

    def _opened(self, call: Any) -> None:
        self._call = call
        if self._cancelled.is_set():
            call.cancel()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._messages)
        except errors.KranError:
            if self._cancelled.is_set():
                raise StopIteration from None
            raise

    def cancel(self) -> None:
        """End the call; a reader blocked in it stops."""
        self._cancelled.set()
        if self._call is not None:
            self._call.cancel()


def chunked(header: Any, fileobj: Any, wrap: Callable[[bytes], Any]) -> Iterable[Any]:
    """The requests of an upload: the header message, then the file in chunks."""
    yield header
    while True:
        data = fileobj.read(CHUNK_SIZE)
        if not data:
            return
        yield wrap(data)
