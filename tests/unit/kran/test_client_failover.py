"""The SDK with several controller endpoints: two real gRPC servers, one of them stopped.

Calls go to the current endpoint and move on when nobody answers there:
unary calls, request streams (sent again from their start) and server
streams that fail before their first message.
"""

from __future__ import annotations

import contextlib
import io
import time

import pytest

from kran import errors
from kran.api.v1 import images_pb2, images_pb2_grpc, system_pb2, system_pb2_grpc
from kran.client import Client, ConnectionFailed, server_said
from kran.client.api import parse_hosts
from tests.procs import free_port
from tests.servers import serving


class System(system_pb2_grpc.SystemServicer):
    def __init__(self, name: str):
        self.name = name

    async def Version(self, request, context):
        return system_pb2.VersionResponse(version=self.name)

    async def Info(self, request, context):
        raise errors.Unavailable("etcd is unavailable")


class Images(images_pb2_grpc.ImagesServicer):
    def __init__(self):
        self.imported: list[bytes] = []

    async def Import(self, request_iterator, context):
        self.imported = [part.chunk async for part in request_iterator if part.chunk]
        return images_pb2.ImportImageResponse(image=images_pb2.Image(id="sha256:" + "a" * 64))

    async def Save(self, request, context):
        for part in (b"ab", b"cd"):
            yield images_pb2.DataChunk(data=part)


def _server(name: str, images: Images | None = None) -> contextlib.AbstractContextManager[str]:
    return serving([
        (system_pb2_grpc.add_SystemServicer_to_server, System(name), "kran.api.v1.System"),
        (images_pb2_grpc.add_ImagesServicer_to_server, images or Images(), "kran.api.v1.Images"),
    ])


def test_parse_hosts():
    assert parse_hosts("a,b:1, [::1]:2 ,a") == ["a:7640", "b:1", "[::1]:2"]
    assert parse_hosts(["a:1", "b:2,c"]) == ["a:1", "b:2", "c:7640"]
    for bad in ("", " , ", "a:x", ["a", "b:0"]):
        with pytest.raises(errors.InvalidArgument):
            parse_hosts(bad)


def test_a_stopped_endpoint_is_passed_over_and_the_live_one_remembered():
    with _server("second") as second:
        with _server("first") as first:
            with Client(f"{first},{second}") as client:
                assert client.version()["Version"] == "first"
                assert client.address == first
        # first is stopped now: the same client setup moves on to second.
        with Client([first, second]) as client:
            started = time.monotonic()
            assert client.version()["Version"] == "second"
            assert client.address == second
            assert client.version()["Version"] == "second"   # no new attempt on first
            assert time.monotonic() - started < 5
            assert client.addresses == [first, second]


def test_a_server_answer_is_not_a_reason_to_move_on():
    with _server("first") as first, _server("second") as second:
        with Client(f"{first},{second}") as client:
            with pytest.raises(errors.Unavailable) as info:
                client.info()
            assert not isinstance(info.value, ConnectionFailed) and server_said(info.value)
            assert client.address == first


def test_none_answering_names_every_endpoint():
    ports = [free_port(), free_port()]
    hosts = [f"127.0.0.1:{port}" for port in ports]
    with Client(hosts) as client:
        with pytest.raises(ConnectionFailed) as info:
            client.version()
    assert str(info.value) == (f"Cannot connect to the kran controller at any of {hosts[0]}, "
                               f"{hosts[1]}. Is kran-controller running?")
    assert not server_said(info.value)


def test_request_streams_and_server_streams_fail_over():
    images = Images()
    dead = f"127.0.0.1:{free_port()}"
    with _server("live", images) as live:
        with Client(f"{dead},{live}") as client:
            image = client.images.import_image(io.BytesIO(b"x" * 10), "app:1")
            assert image.id == "sha256:" + "a" * 64
            assert b"".join(images.imported) == b"x" * 10
        with Client(f"{dead},{live}") as client:
            assert b"".join(client.images.save_stream(["app:1"])) == b"abcd"
            assert client.address == live
