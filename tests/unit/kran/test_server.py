"""The server interceptor: errors become status codes, calls are timed."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from kran import errors
from kran.api.v1 import images_pb2, images_pb2_grpc, system_pb2, system_pb2_grpc
from kran.metrics import RPC_HANDLED
from kran.server import start_server


class FailingSystem(system_pb2_grpc.SystemServicer):
    async def Version(self, request, context):
        raise errors.NotFound("No such thing: x")

    async def Info(self, request, context):
        raise ValueError("secret internals")


class FailingImages(images_pb2_grpc.ImagesServicer):
    async def Save(self, request, context):
        yield images_pb2.DataChunk(data=b"first")
        raise errors.InvalidArgument("bad reference")

    async def List(self, request, context):
        return images_pb2.ListImagesResponse()


@pytest.fixture
def run_against_server():
    """Run an async call(channel) against a live server on a free port."""
    def runner(call):
        async def run():
            import socket
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            server = await start_server(f"127.0.0.1:{port}", [
                (system_pb2_grpc.add_SystemServicer_to_server, FailingSystem(),
                 "kran.api.v1.System"),
                (images_pb2_grpc.add_ImagesServicer_to_server, FailingImages(),
                 "kran.api.v1.Images"),
            ])
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    return await call(channel)
            finally:
                await server.stop(None)
        return asyncio.run(run())
    return runner


def test_kran_error_keeps_code_and_message(run_against_server):
    async def call(channel):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await system_pb2_grpc.SystemStub(channel).Version(system_pb2.VersionRequest())
        return info.value
    err = run_against_server(call)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == "No such thing: x"
    assert isinstance(errors.from_rpc_error(err), errors.NotFound)


def test_unexpected_error_is_internal_without_internals(run_against_server):
    async def call(channel):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await system_pb2_grpc.SystemStub(channel).Info(system_pb2.InfoRequest())
        return info.value
    err = run_against_server(call)
    assert err.code() == grpc.StatusCode.INTERNAL
    assert "incident" in err.details()
    assert "secret" not in err.details() and "Traceback" not in err.details()


def test_stream_error_after_first_message(run_against_server):
    async def call(channel):
        got = []
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for chunk in images_pb2_grpc.ImagesStub(channel).Save(
                    images_pb2.SaveImagesRequest()):
                got.append(chunk.data)
        return got, info.value
    got, err = run_against_server(call)
    assert got == [b"first"]
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "bad reference"


def test_calls_are_counted_by_method_and_code(run_against_server):
    method = "/kran.api.v1.Images/List"
    before = RPC_HANDLED.labels(method, "OK")._value.get()

    async def call(channel):
        await images_pb2_grpc.ImagesStub(channel).List(images_pb2.ListImagesRequest())
    run_against_server(call)
    assert RPC_HANDLED.labels(method, "OK")._value.get() == before + 1


def test_health_and_reflection(run_against_server):
    async def call(channel):
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="kran.api.v1.System"))
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        names = []
        async for answer in stub.ServerReflectionInfo(iter([
                reflection_pb2.ServerReflectionRequest(list_services="")])):
            names = [s.name for s in answer.list_services_response.service]
        return health.status, names
    status, names = run_against_server(call)
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert {"kran.api.v1.System", "kran.api.v1.Images", "grpc.health.v1.Health"} <= set(names)
