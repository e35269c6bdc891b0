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


class _Outcome:
    """Records the status code a call ended with."""

    def __init__(self) -> None:
        self.code = grpc.StatusCode.OK


async def _fail(context: grpc.aio.ServicerContext, method: str, exc: BaseException,
                outcome: _Outcome) -> None:
    """Abort the call with the status that exc stands for."""
    if isinstance(exc, KranError):
        outcome.code = exc.code
        await context.abort(exc.code, exc.message)
    if isinstance(exc, grpc.aio.AioRpcError):
        # A downstream call (controller -> agent) failed: pass its status on.
        outcome.code = exc.code()
        await context.abort(exc.code(), exc.details() or exc.code().name)
    incident = uuid.uuid4().hex[:12]
    log.error("internal error in %s (incident %s)", method, incident, exc_info=exc)
    outcome.code = grpc.StatusCode.INTERNAL
    await context.abort(grpc.StatusCode.INTERNAL,
                        f"internal error (incident {incident}); see the server log")


def _observe(method: str, started: float, outcome: _Outcome) -> None:
    code = outcome.code.name
    RPC_SECONDS.labels(method, code).observe(time.perf_counter() - started)
    RPC_HANDLED.labels(method, code).inc()


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
                outcome, started = _Outcome(), time.perf_counter()
                try:
                    return await inner(request, context)
                except asyncio.CancelledError:
                    outcome.code = grpc.StatusCode.CANCELLED
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped to a status
                    if _is_abort(exc):
                        outcome.code = context.code() or grpc.StatusCode.UNKNOWN
                        raise
                    await _fail(context, method, exc, outcome)
                finally:
                    _observe(method, started, outcome)

            factory = (grpc.unary_unary_rpc_method_handler if handler.unary_unary
                       else grpc.stream_unary_rpc_method_handler)
            return factory(unary, request_deserializer=handler.request_deserializer,
                           response_serializer=handler.response_serializer)

        inner = handler.unary_stream or handler.stream_stream

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
            outcome, started = _Outcome(), time.perf_counter()
            try:
                async for item in inner(request, context):
                    yield item
            except asyncio.CancelledError:
                outcome.code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to a status
                if _is_abort(exc):
                    outcome.code = context.code() or grpc.StatusCode.UNKNOWN
                    raise
                await _fail(context, method, exc, outcome)
            finally:
                _observe(method, started, outcome)

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
