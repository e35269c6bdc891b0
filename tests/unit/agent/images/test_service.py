"""The agent's Images servicer on a real grpc.aio server, called through a real channel."""

from __future__ import annotations

import asyncio
import io
import tarfile
from pathlib import Path

import grpc
import pytest

from agent.images.service import CHUNK_SIZE, ImagesService
from agent.images.store import ImageStore
from kran.api.v1 import images_pb2, images_pb2_grpc
from kran.server import start_server
from tests.procs import free_port
from tests.unit.agent.images.imagekit import busybox_rootfs



def _run(store: ImageStore, call):
    async def main():
        port = free_port()
        server = await start_server(f"127.0.0.1:{port}", [
            (images_pb2_grpc.add_ImagesServicer_to_server, ImagesService(store), "kran.api.v1.Images")])
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return await call(images_pb2_grpc.ImagesStub(channel))
        finally:
            await server.stop(None)
    return asyncio.run(main())


def _upload(header, data: bytes, request_type, chunk: int = 64 << 10):
    yield request_type(header=header)
    for start in range(0, len(data), chunk):
        yield request_type(chunk=data[start:start + chunk])


def test_import_list_inspect_save_load_remove_over_grpc(sandbox: Path):  # noqa: F811
    store = ImageStore(sandbox / "images")
    rootfs = busybox_rootfs(sandbox / "rootfs.tar").read_bytes()

    async def call(stub):
        imported = await stub.Import(_upload(
            images_pb2.ImportHeader(reference="busybox:1", changes=["CMD [\"sh\"]", "LABEL a=b"],
                                    message="over grpc"),
            rootfs, images_pb2.ImportImageRequest))
        listed = await stub.List(images_pb2.ListImagesRequest(filters={"label": "a=b"}))
        detail = await stub.Inspect(images_pb2.InspectImageRequest(reference=imported.image.id[7:12]))
        chunks = [c.data async for c in stub.Save(images_pb2.SaveImagesRequest(references=["busybox:1"]))]
        removed = await stub.Remove(images_pb2.RemoveImageRequest(reference="busybox:1"))
        loaded = await stub.Load(_upload(images_pb2.LoadHeader(), b"".join(chunks),
                                         images_pb2.LoadImagesRequest))
        await stub.Tag(images_pb2.TagImageRequest(source="busybox:1", target="bb:2"))
        pruned = await stub.Prune(images_pb2.PruneImagesRequest(all=True))
        return imported, listed, detail, chunks, removed, loaded, pruned

    imported, listed, detail, chunks, removed, loaded, pruned = _run(store, call)
    image = imported.image
    assert image.repo_tags == ["busybox:1"] and image.labels == {"a": "b"} and image.size > 0
    assert image.created.seconds > 0
    assert [i.id for i in listed.images] == [image.id]
    assert detail.image.id == image.id and detail.manifest_digest.startswith("sha256:")
    assert detail.layers[0].media_type == "application/vnd.oci.image.layer.v1.tar"
    assert b'"comment":"over grpc"' in detail.config
    assert all(len(c) <= CHUNK_SIZE for c in chunks) and len(chunks) >= 2
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert {"manifest.json", "index.json", "oci-layout"} <= set(tar.getnames())
    assert [r.WhichOneof("what") for r in removed.removed][:2] == ["untagged", "deleted"]
    assert removed.removed[0].untagged == "busybox:1" and removed.removed[1].deleted == image.id
    assert list(loaded.messages) == ["Loaded image: busybox:1"] and loaded.images[0].id == image.id
    assert pruned.space_reclaimed > 0
    assert [r.untagged for r in pruned.removed[:2]] == ["bb:2", "busybox:1"]
    assert store.list_images() == [] and list(store.blobs.ingest_dir.iterdir()) == []
    store.close()


def test_errors_map_to_status_codes(sandbox: Path):  # noqa: F811
    store = ImageStore(sandbox / "images")

    async def call(stub):
        codes = []
        for coro in (stub.Inspect(images_pb2.InspectImageRequest(reference="nothere")),
                     stub.Tag(images_pb2.TagImageRequest(source="x", target="Bad")),
                     stub.Import(_upload(images_pb2.ImportHeader(changes=["RUN x"]), b"",
                                         images_pb2.ImportImageRequest)),
                     stub.Load(_upload(images_pb2.LoadHeader(), b"junk" * 100, images_pb2.LoadImagesRequest))):
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await coro
            codes.append((exc.value.code(), exc.value.details()))
        return codes

    codes = _run(store, call)
    assert codes[0] == (grpc.StatusCode.NOT_FOUND, "No such image: nothere")
    assert codes[1][0] == grpc.StatusCode.INVALID_ARGUMENT and "lowercase" in codes[1][1]
    assert codes[2][0] == grpc.StatusCode.INVALID_ARGUMENT and "not a valid change command" in codes[2][1]
    assert codes[3][0] == grpc.StatusCode.INVALID_ARGUMENT
    assert list(store.blobs.ingest_dir.iterdir()) == []
    store.close()
