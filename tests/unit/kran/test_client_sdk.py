"""The SDK against the generated stubs, served in-process by kran.server.

The servicers here answer from memory; what is tested is the SDK's side:
requests it builds, streams it sends and reads, models it returns, and the
error kinds it raises.
"""

from __future__ import annotations

import io
import json
import socket
import time

import pytest

from kran import errors
from kran.api.v1 import (images_pb2, images_pb2_grpc, nodes_pb2, nodes_pb2_grpc, system_pb2,
                         system_pb2_grpc)
from kran.client import Client, ConnectionFailed, server_said
from kran.client.api import CHUNK_SIZE
from tests.procs import free_port
from tests.servers import serving

IMAGE_ID = "sha256:" + "e" * 64


def _image(**kwargs):
    return images_pb2.Image(id=IMAGE_ID, repo_tags=["app:1"], size=10, node_id="n1",
                            node_name="node1", **kwargs)


class Images(images_pb2_grpc.ImagesServicer):
    def __init__(self):
        self.seen = {}

    async def List(self, request, context):
        self.seen["list"] = request
        return images_pb2.ListImagesResponse(images=[_image()])

    async def Inspect(self, request, context):
        if request.reference not in ("app:1", IMAGE_ID):
            raise errors.NotFound(f"No such image: {request.reference}")
        config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]}}
        return images_pb2.ImageDetail(image=_image(), config=json.dumps(config).encode(),
                                      layers=[images_pb2.Layer(size=10)])

    async def Import(self, request_iterator, context):
        parts = [r async for r in request_iterator]
        self.seen["import"] = parts
        return images_pb2.ImportImageResponse(image=_image())

    async def Load(self, request_iterator, context):
        parts = [r async for r in request_iterator]
        self.seen["load"] = parts
        return images_pb2.LoadImagesResponse(images=[_image()],
                                             messages=["Loaded image: app:1"])

    async def Save(self, request, context):
        for part in (b"ab", b"cd", b"e"):
            yield images_pb2.DataChunk(data=part)

    async def Tag(self, request, context):
        self.seen["tag"] = request
        return images_pb2.TagImageResponse()

    async def Remove(self, request, context):
        self.seen["remove"] = request
        return images_pb2.RemoveImageResponse(removed=[
            images_pb2.RemovedImage(untagged="app:1"), images_pb2.RemovedImage(deleted=IMAGE_ID)])

    async def Prune(self, request, context):
        return images_pb2.PruneImagesResponse(
            removed=[images_pb2.RemovedImage(deleted=IMAGE_ID)], space_reclaimed=10)


class Nodes(nodes_pb2_grpc.NodesServicer):
    async def List(self, request, context):
        return nodes_pb2.ListNodesResponse(nodes=[nodes_pb2.Node(
            id="n1", status=nodes_pb2.NODE_STATUS_READY,
            description=nodes_pb2.NodeDescription(hostname="node1"))])

    async def Inspect(self, request, context):
        raise errors.NotFound(f"node {request.node} not found")


class System(system_pb2_grpc.SystemServicer):
    async def Version(self, request, context):
        return system_pb2.VersionResponse(version="0.1.0", api_version="v1", etcd_version="3.4")

    async def Info(self, request, context):
        # A server's own UNAVAILABLE must not read as "cannot connect".
        raise errors.Unavailable("node n2 at 127.0.0.1:9 cannot be reached")



@pytest.fixture(scope="module")
def served():
    """A kran.server on a free port, in a thread of its own; yields (address, images)."""
    images = Images()
    with serving([
        (images_pb2_grpc.add_ImagesServicer_to_server, images, "kran.api.v1.Images"),
        (nodes_pb2_grpc.add_NodesServicer_to_server, Nodes(), "kran.api.v1.Nodes"),
        (system_pb2_grpc.add_SystemServicer_to_server, System(), "kran.api.v1.System"),
    ]) as address:
        yield address, images


@pytest.fixture
def client(served):
    with Client(served[0]) as c:
        yield c


def test_list_sends_filters_and_returns_summary_models(client, served):
    images = client.images.list(name="app", all=True, filters={"dangling": False}, node="node1")
    request = served[1].seen["list"]
    assert dict(request.filters) == {"dangling": "false", "reference": "app"}
    assert request.all and request.node == "node1"
    [image] = images
    assert image.id == IMAGE_ID and image.short_id == "sha256:" + "e" * 12
    assert image.tags == ["app:1"] and image.node_name == "node1"
    assert image.attrs["Size"] == 10


def test_list_refuses_two_values_for_one_filter(client):
    with pytest.raises(errors.InvalidArgument):
        client.images.list(filters={"label": ["a", "b"]})


def test_get_reload_and_history(client):
    image = client.images.get("app:1")
    assert image.attrs["Config"] == {"Cmd": ["sh"]} and image.attrs["Os"] == "linux"
    image.reload()
    assert image.history()[0]["Id"] == IMAGE_ID


def test_server_errors_become_kinds(client):
    with pytest.raises(errors.NotFound) as info:
        client.images.get("nope")
    assert str(info.value) == "No such image: nope" and server_said(info.value)
    with pytest.raises(errors.NotFound):
        client.nodes.get("x")
    with pytest.raises(errors.Unavailable) as info:
        client.info()
    assert not isinstance(info.value, ConnectionFailed) and server_said(info.value)


def test_import_streams_header_then_chunks(client, served):
    data = bytes(range(256)) * (CHUNK_SIZE // 256 * 2 + 1)
    image = client.images.import_image(io.BytesIO(data), reference="app:1",
                                       changes=["CMD sh"], message="m")
    assert image.id == IMAGE_ID
    parts = served[1].seen["import"]
    assert parts[0].header.reference == "app:1" and list(parts[0].header.changes) == ["CMD sh"]
    assert b"".join(p.chunk for p in parts[1:]) == data
    assert max(len(p.chunk) for p in parts[1:]) == CHUNK_SIZE


def test_import_of_a_missing_file_is_invalid(client, tmp_path):
    with pytest.raises(errors.InvalidArgument):
        client.images.import_image(tmp_path / "missing.tar")


def test_load_save_tag_remove_prune(client, served, tmp_path):
    path = tmp_path / "in.tar"
    path.write_bytes(b"tarball")
    images, messages = client.images.load(str(path), node="node1")
    assert messages == ["Loaded image: app:1"] and images[0].id == IMAGE_ID
    assert served[1].seen["load"][0].header.node == "node1"
    out = io.BytesIO()
    assert client.images.save(["app:1"], out) == 5 and out.getvalue() == b"abcde"
    client.images.tag("app:1", "other:2", node="node1")
    assert served[1].seen["tag"].target == "other:2"
    with pytest.raises(errors.InvalidArgument):
        client.images.tag("app:1", "Other:2")
    assert client.images.remove("app:1", force=True) == [{"Untagged": "app:1"},
                                                         {"Deleted": IMAGE_ID}]
    assert served[1].seen["remove"].force
    assert client.images.prune() == {"ImagesDeleted": [{"Deleted": IMAGE_ID}],
                                     "SpaceReclaimed": 10}


def test_nodes_and_version(client):
    [node] = client.nodes.list()
    assert (node.id, node.name, node.state) == ("n1", "node1", "ready")
    version = client.version()
    assert version["Version"] == "0.1.0"
    assert {"Name": "etcd", "Version": "3.4"} in version["Components"]


def test_unreachable_controller_fails_fast_naming_the_address():
    port = free_port()
    with Client(f"127.0.0.1:{port}") as c:
        started = time.monotonic()
        with pytest.raises(ConnectionFailed) as info:
            c.nodes.list()
    assert time.monotonic() - started < 5
    assert str(info.value) == (f"Cannot connect to the kran controller at 127.0.0.1:{port}. "
                               "Is kran-controller running?")
    assert not server_said(info.value)


def test_silent_listener_fails_within_the_connect_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        with Client(f"127.0.0.1:{silent.getsockname()[1]}") as c:
            started = time.monotonic()
            with pytest.raises(ConnectionFailed):
                c.version()
            assert time.monotonic() - started < 8


def test_from_env_and_bad_address():
    assert Client.from_env({"KRAN_HOST": "10.1.2.3:99"}).address == "10.1.2.3:99"
    assert Client.from_env({}).address == "127.0.0.1:7640"
    with pytest.raises(errors.InvalidArgument):
        Client("127.0.0.1:notaport")
