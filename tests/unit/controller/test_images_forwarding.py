"""The controller's Images forwarding rules, with small in-process agents.

The agents here are real gRPC servers holding a dict of references, so the
test sees exactly which node each call reached; the node registry runs on
a real etcd.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import grpc
import pytest

from controller.agents import AgentPool
from controller.api.images import ImagesForwarder
from controller.nodes import NodeRegistry
from controller.store import EtcdStore
from kran import errors
from kran.api.v1 import images_pb2, images_pb2_grpc, nodes_pb2
from kran.server import start_server
from tests.procs import Etcd, free_port

IMAGES = images_pb2.DESCRIPTOR.services_by_name["Images"].full_name


class ToyAgent(images_pb2_grpc.ImagesServicer):
    """An agent whose store is {reference: image id}."""

    def __init__(self, refs: dict[str, str]) -> None:
        self.refs = dict(refs)
        self.received = b""

    def _image(self, ref: str) -> images_pb2.Image:
        return images_pb2.Image(id=self.refs[ref], repo_tags=[ref])

    def _need(self, ref: str) -> None:
        if ref not in self.refs:
            raise errors.NotFound(f"No such image: {ref}")

    async def List(self, request, context):
        return images_pb2.ListImagesResponse(images=[self._image(r) for r in sorted(self.refs)])

    async def Inspect(self, request, context):
        self._need(request.reference)
        return images_pb2.ImageDetail(image=self._image(request.reference))

    async def Tag(self, request, context):
        self._need(request.source)
        self.refs[request.target] = self.refs[request.source]
        return images_pb2.TagImageResponse()

    async def Remove(self, request, context):
        self._need(request.reference)
        del self.refs[request.reference]
        return images_pb2.RemoveImageResponse(
            removed=[images_pb2.RemovedImage(untagged=request.reference)])

    async def Prune(self, request, context):
        return images_pb2.PruneImagesResponse(space_reclaimed=100)

    async def Save(self, request, context):
        for ref in request.references:
            self._need(ref)
        for ref in request.references:
            yield images_pb2.DataChunk(data=f"<{ref}>".encode())

    async def Import(self, request_iterator, context):
        header = None
        async for message in request_iterator:
            if message.HasField("header"):
                header = message.header
            else:
                self.received += message.chunk
        image_id = "sha256:" + hashlib.sha256(self.received).hexdigest()
        self.refs[header.reference] = image_id
        return images_pb2.ImportImageResponse(image=self._image(header.reference))


    async def Pull(self, request, context):
        yield images_pb2.Progress(id="1", status=f"Pulling from {request.reference}")
        if request.reference == "refused" and "b-only:1" in self.refs:  # only beta refuses
            raise errors.PermissionDenied("unauthorized: authentication required")
        self.refs[request.reference] = "sha256:p"
        yield images_pb2.Progress(status=f"auth {request.auth.username}")

    async def Push(self, request, context):
        self._need(request.reference)
        yield images_pb2.Progress(status=f"pushed {request.reference}")

    async def Login(self, request, context):
        return images_pb2.LoginResponse(status=f"Login Succeeded {sorted(self.refs)}")

    async def Search(self, request, context):
        return images_pb2.SearchImagesResponse(results=[images_pb2.SearchResult(name=r) for r in sorted(self.refs)])


class Cluster:
    """A controller Images service over toy agents registered in etcd."""

    def __init__(self, registry: NodeRegistry, stub: images_pb2_grpc.ImagesStub,
                 agents: dict[str, ToyAgent], ids: dict[str, str]) -> None:
        self.registry, self.stub, self.agents, self.ids = registry, stub, agents, ids


def with_cluster(etcd: Etcd, contents: dict[str, dict[str, str]], body):
    """Run body(cluster) with one toy agent per hostname in contents."""
    async def main():
        store = EtcdStore([etcd.endpoint])
        registry = NodeRegistry(store, ttl=10)
        pool = AgentPool()
        servers, agents, ids = [], {}, {}
        try:
            for index, (hostname, refs) in enumerate(contents.items()):
                agents[hostname] = ToyAgent(refs)
                address = f"127.0.0.1:{free_port()}"
                servers.append(await start_server(address, [
                    (images_pb2_grpc.add_ImagesServicer_to_server, agents[hostname], IMAGES)]))
                ids[hostname] = f"{index}{hostname}".ljust(25, "0")
                await registry.register(ids[hostname], nodes_pb2.NodeDescription(
                    hostname=hostname, address=address))
            controller_address = f"127.0.0.1:{free_port()}"
            servers.append(await start_server(controller_address, [
                (images_pb2_grpc.add_ImagesServicer_to_server, ImagesForwarder(registry, pool),
                 IMAGES)]))
            async with grpc.aio.insecure_channel(controller_address) as channel:
                return await body(Cluster(registry, images_pb2_grpc.ImagesStub(channel),
                                          agents, ids))
        finally:
            for server in servers:
                await server.stop(None)
            await pool.close()
            for prefix in ("presence/", "nodes/"):
                for entry in await store.list(prefix):
                    await store.delete(entry.key)
            await store.close()
    return asyncio.run(main())


async def failure(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


TWO = {"beta": {"shared:1": "sha256:s", "b-only:1": "sha256:b"},
       "alpha": {"shared:1": "sha256:s", "a-only:1": "sha256:a"}}


def test_list_fans_out_and_stamps_nodes(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        reply = await c.stub.List(images_pb2.ListImagesRequest())
        seen = [(i.node_name, i.repo_tags[0], i.node_id) for i in reply.images]
        assert seen == [("alpha", "a-only:1", c.ids["alpha"]), ("alpha", "shared:1", c.ids["alpha"]),
                        ("beta", "b-only:1", c.ids["beta"]), ("beta", "shared:1", c.ids["beta"])]
        only = await c.stub.List(images_pb2.ListImagesRequest(node="beta"))
        assert {i.node_name for i in only.images} == {"beta"}
        prefixed = await c.stub.List(images_pb2.ListImagesRequest(node=c.ids["alpha"][:3]))
        assert {i.node_name for i in prefixed.images} == {"alpha"}
    with_cluster(etcd, TWO, body)


def test_inspect_goes_to_the_first_node_that_has_it(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        shared = await c.stub.Inspect(images_pb2.InspectImageRequest(reference="shared:1"))
        assert shared.image.node_name == "alpha"
        only = await c.stub.Inspect(images_pb2.InspectImageRequest(reference="b-only:1"))
        assert only.image.node_name == "beta" and only.image.node_id == c.ids["beta"]
        err = await failure(c.stub.Inspect(images_pb2.InspectImageRequest(reference="nope")))
        assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == "No such image: nope"
    with_cluster(etcd, TWO, body)


def test_tag_and_remove_reach_every_node_that_has_it(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        await c.stub.Tag(images_pb2.TagImageRequest(source="shared:1", target="shared:2"))
        assert "shared:2" in c.agents["alpha"].refs and "shared:2" in c.agents["beta"].refs
        await c.stub.Tag(images_pb2.TagImageRequest(source="a-only:1", target="a-only:2"))
        assert "a-only:2" in c.agents["alpha"].refs and "a-only:2" not in c.agents["beta"].refs
        err = await failure(c.stub.Tag(images_pb2.TagImageRequest(source="nope", target="x")))
        assert err.code() == grpc.StatusCode.NOT_FOUND

        removed = await c.stub.Remove(images_pb2.RemoveImageRequest(reference="shared:2"))
        assert [r.untagged for r in removed.removed] == ["shared:2"]
        assert "shared:2" not in c.agents["alpha"].refs | c.agents["beta"].refs
        err = await failure(c.stub.Remove(images_pb2.RemoveImageRequest(reference="shared:2")))
        assert err.code() == grpc.StatusCode.NOT_FOUND

        pruned = await c.stub.Prune(images_pb2.PruneImagesRequest())
        assert pruned.space_reclaimed == 200
    with_cluster(etcd, TWO, body)


def test_save_streams_from_the_node_with_every_image(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        chunks = [m.data async for m in c.stub.Save(
            images_pb2.SaveImagesRequest(references=["shared:1", "b-only:1"]))]
        assert chunks == [b"<shared:1>", b"<b-only:1>"]
        err = await failure(_drain(c.stub.Save(
            images_pb2.SaveImagesRequest(references=["a-only:1", "b-only:1"]))))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "no single node has all of" in err.details()
        err = await failure(_drain(c.stub.Save(images_pb2.SaveImagesRequest(references=["x"]))))
        assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == "No such image: x"
    with_cluster(etcd, TWO, body)


async def _drain(call) -> None:
    async for _ in call:
        pass


async def _import(header: images_pb2.ImportHeader, parts: list[bytes]
                  ) -> AsyncIterator[images_pb2.ImportImageRequest]:
    yield images_pb2.ImportImageRequest(header=header)
    for part in parts:
        yield images_pb2.ImportImageRequest(chunk=part)


def test_import_streams_to_the_chosen_node(etcd: Etcd) -> None:
    parts = [bytes([n]) * 100_000 for n in range(20)]

    async def body(c: Cluster) -> None:
        reply = await c.stub.Import(_import(
            images_pb2.ImportHeader(reference="new:1", node="beta"), parts))
        assert c.agents["beta"].received == b"".join(parts)
        assert reply.image.repo_tags == ["new:1"] and c.agents["alpha"].received == b""
        await c.stub.Import(_import(images_pb2.ImportHeader(reference="new:2"), parts[:1]))
        assert "new:2" in c.agents["alpha"].refs
        err = await failure(c.stub.Import(_import(
            images_pb2.ImportHeader(reference="x", node="gamma"), [])))
        assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == "node gamma not found"
    with_cluster(etcd, TWO, body)


def test_a_down_node_is_refused_and_no_ready_node_is_named(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        presence = await c.registry.store.get(f"presence/{c.ids['alpha']}")
        await c.registry.store.revoke_lease(presence.lease)
        err = await failure(c.stub.List(images_pb2.ListImagesRequest(node="alpha")))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert err.details() == f"node alpha ({c.ids['alpha']}) is down"
        err = await failure(c.stub.List(images_pb2.ListImagesRequest()))
        assert err.details() == "no node is ready"
    with_cluster(etcd, {"alpha": {}}, body)


def test_pull_goes_to_the_first_node_or_to_all(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        auth = images_pb2.RegistryAuth(username="u", password="p")
        one = [p async for p in c.stub.Pull(images_pb2.PullImageRequest(reference="x:1", auth=auth))]
        assert [(p.node_name, p.status) for p in one] == [("alpha", "Pulling from x:1"), ("alpha", "auth u")]
        assert "x:1" not in c.agents["beta"].refs
        both = [p async for p in c.stub.Pull(images_pb2.PullImageRequest(reference="y:1", all_nodes=True))]
        assert sorted((p.node_name, p.status) for p in both) == [
            ("alpha", "Pulling from y:1"), ("alpha", "auth "), ("beta", "Pulling from y:1"), ("beta", "auth ")]
        lines = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for line in c.stub.Pull(images_pb2.PullImageRequest(reference="refused", all_nodes=True)):
                lines.append((line.node_name, line.status, line.error))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert ("beta", "", "unauthorized: authentication required") in lines
        assert "refused" in c.agents["alpha"].refs, "the other node's pull went on"
    with_cluster(etcd, TWO, body)


def test_push_goes_to_a_node_with_the_image_login_and_search_to_the_first(etcd: Etcd) -> None:
    async def body(c: Cluster) -> None:
        out = [p async for p in c.stub.Push(images_pb2.PushImageRequest(reference="b-only:1"))]
        assert [(p.node_name, p.status) for p in out] == [("beta", "pushed b-only:1")]
        err = await failure(c.stub.Push(images_pb2.PushImageRequest(reference="nowhere:1")).read())
        assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND,
                                               "An image does not exist locally with the tag: nowhere:1")
        login = await c.stub.Login(images_pb2.LoginRequest(auth=images_pb2.RegistryAuth(username="u")))
        assert login.status == "Login Succeeded ['a-only:1', 'shared:1']"
        found = await c.stub.Search(images_pb2.SearchImagesRequest(term="x"))
        assert [r.name for r in found.results] == ["a-only:1", "shared:1"]
    with_cluster(etcd, TWO, body)
