"""The gRPC server every kran process runs: errors, metrics, health, reflection.

One interceptor owns the mapping from exceptions to status codes: a
`KranError` keeps its message; anything else is logged with its traceback
under a short correlation id, and the caller gets only that id.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kran.errors import KranError
from kran.metrics import RPC_HANDLED, RPC_SECONDS

log = logging.getLogger(__name__)


class _Call:
    """One call as the interceptor sees it: timed, its exception turned into a status."""

    def __init__(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self.method, self.context = method, context
        self.code = grpc.StatusCode.OK

    async def __aenter__(self) -> "_Call":
        self.started = time.perf_counter()
        return self

    async def __aexit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> bool:
        try:
            if isinstance(exc, asyncio.CancelledError):
                self.code = grpc.StatusCode.CANCELLED
            elif exc is not None and _is_abort(exc):
                self.code = self.context.code() or grpc.StatusCode.UNKNOWN
            elif isinstance(exc, Exception):
                await self._fail(exc)
            return False
        finally:
            RPC_SECONDS.labels(self.method, self.code.name).observe(time.perf_counter() - self.started)
            RPC_HANDLED.labels(self.method, self.code.name).inc()

    async def _fail(self, exc: Exception) -> None:
        """Abort the call with the status that exc stands for."""
        if isinstance(exc, KranError):
            self.code = exc.code
            await self.context.abort(exc.code, exc.message)
        if isinstance(exc, grpc.aio.AioRpcError):
            # A downstream call (controller -> agent) failed: pass its status on.
            self.code = exc.code()
            await self.context.abort(exc.code(), exc.details() or exc.code().name)
        incident = uuid.uuid4().hex[:12]
        log.error("internal error in %s (incident %s)", self.method, incident, exc_info=exc)
        self.code = grpc.StatusCode.INTERNAL
        await self.context.abort(grpc.StatusCode.INTERNAL,
                                 f"internal error (incident {incident}); see the server log")


def _is_abort(exc: BaseException) -> bool:
    # context.abort() raises this; it already carries the status.
    return isinstance(exc, grpc.aio.AbortError) or type(exc).__name__ == "AbortError"


class ErrorsAndMetrics(grpc.aio.ServerInterceptor):
    """Maps exceptions to status codes and times every call."""

    async def intercept_service(self, continuation: Callable, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.unary_unary or handler.stream_unary:
            inner = handler.unary_unary or handler.stream_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                async with _Call(method, context):
                    return await inner(request, context)

            factory = (grpc.unary_unary_rpc_method_handler if handler.unary_unary
                       else grpc.stream_unary_rpc_method_handler)
            return factory(unary, request_deserializer=handler.request_deserializer,
                           response_serializer=handler.response_serializer)

        inner = handler.unary_stream or handler.stream_stream

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with _Call(method, context):
                async for item in inner(request, context):
                    yield item

        factory = (grpc.unary_stream_rpc_method_handler if handler.unary_stream
                   else grpc.stream_stream_rpc_method_handler)
        return factory(streaming, request_deserializer=handler.request_deserializer,
                       response_serializer=handler.response_serializer)


Registration = tuple[Callable[[Any, grpc.aio.Server], None], Any, str]
"""(add_XServicer_to_server, servicer, full service name)."""


async def start_server(listen: str, services: Iterable[Registration]) -> grpc.aio.Server:
    """Start a grpc.aio server on listen ("host:port") with the given services.

    Health checking reports SERVING for every service, and reflection lists
    them, so grpcurl and other-language clients work from the .proto alone.
    """
    server = grpc.aio.server(
        interceptors=[ErrorsAndMetrics()],
        options=[("grpc.max_receive_message_length", 64 << 20),
                 ("grpc.max_send_message_length", 64 << 20)],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME]
    for add, servicer, name in services:
        add(servicer, server)
        names.append(name)
    reflection.enable_server_reflection(names, server)
    try:
        bound = server.add_insecure_port(listen)
    except RuntimeError:  # newer grpcio raises instead of returning 0
        bound = 0
    if bound == 0:
        raise OSError(f"cannot listen on {listen}: address in use or not available")
    await server.start()
    for name in names:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return server
