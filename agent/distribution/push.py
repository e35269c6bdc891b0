"""docker push: layers (gzip-compressed on the way out), config, then the manifest.

For each layer, as Docker does: a compressed blob of it that this node
knows to be in the target repository is checked with HEAD ("Layer already
exists"); one known in another repository of the same registry is mounted
from there ("Mounted from <repo>"); else the layer is gzip-compressed while
it is uploaded in chunks (POST, PATCH with Content-Range, PUT ?digest=):
blocks are compressed on every core ahead of the upload (blockgzip), so
compressing and sending overlap. Compression is deterministic (no
timestamp, fixed level and blocks), and the node records each compressed
digest per DiffID, so pushing again gives the same digests. Uploads run
several at a time (--max-concurrent-uploads). The manifest is an OCI image
manifest.
"""

from __future__ import annotations

import asyncio
import json

from agent.distribution import manifests
from agent.distribution.auth import Credentials, pull_scope, push_scope
from agent.distribution.blockgzip import BlockGzip
from agent.distribution.client import RegistryClient, RegistryError, connect
from agent.distribution.progress import (LAYER_EXISTS, PREPARING, PUSHED, PUSHING, Reporter, mounted_from,
                                         short_id)
from agent.distribution.registries import RegistryOptions
from agent.distribution.transfers import Transfer, Transfers
from agent.images.content import sha256_digest
from agent.images.metadata import LayerSource
from agent.images.remote import PushSource
from agent.images.store import ImageStore
from kran import errors, reference

CHUNK = 8 << 20         # bytes per PATCH
GZIP_LEVEL = 1          # fast: pushing is bound by compression, and the size cost is small


class Pusher:
    """Pushes images from one node's store; one per agent, shared by its calls."""

    def __init__(self, store: ImageStore, options: RegistryOptions) -> None:
        self.store = store
        self.options = options
        self.uploads = Transfers(options.max_uploads)

    async def push(self, text: str, reporter: Reporter, credentials: Credentials, all_tags: bool = False) -> None:
        """Push `text` (name[:tag]; with all_tags every tag of the name), reporting to `reporter`."""
        ref = reference.parse(text, default_tag=not all_tags)
        if ref.digest:
            raise errors.InvalidArgument(f"cannot push a digest reference: {text}")
        if all_tags:
            if ref.tag:
                raise errors.InvalidArgument("tag can't be used with --all-tags/-a")
            tags = [reference.parse(name) for name in await asyncio.to_thread(self.store.tags_of, ref.name())]
            if not tags:
                raise errors.NotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}")
        else:
            tags = [ref]
        sources = [await asyncio.to_thread(self.store.push_source, tag.full()) for tag in tags]
        reporter.status(f"The push refers to repository [{ref.name()}]")
        client = await connect(ref.domain, self.options, credentials.for_registry(ref.domain), pull=False)
        try:
            for tag, source in zip(tags, sources):
                await self._push(client, tag, source, reporter)
        finally:
            await client.close()

    async def _push(self, client: RegistryClient, ref: reference.Reference, source: PushSource,
                    reporter: Reporter) -> None:
        pin = self.store.pin()
        pin.add(blobs=[source.id, *source.diff_ids])
        try:
            for diff_id in reversed(source.diff_ids):  # Docker lists the top layer first
                reporter.status(PREPARING, id=short_id(diff_id))
            unique = list(dict.fromkeys(source.diff_ids))
            results = await asyncio.gather(*(self._layer(client, ref.path, d, reporter) for d in unique))
            by_diff = dict(zip(unique, results))
            await self._blob_bytes(client, ref.path, source.config)
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": manifests.OCI_MANIFEST,
                "config": {"mediaType": manifests.OCI_CONFIG, "digest": source.id, "size": len(source.config)},
                "layers": [{"mediaType": by_diff[d].media_type, "digest": by_diff[d].digest,
                            "size": by_diff[d].size} for d in source.diff_ids],
            }, separators=(",", ":")).encode()
            digest = sha256_digest(manifest)
            try:
                response = await client.call("PUT", f"/v2/{ref.path}/manifests/{ref.tag}",
                                             scopes=(push_scope(ref.path),), expect=(201, 200),
                                             headers={"Content-Type": manifests.OCI_MANIFEST}, content=manifest)
            except RegistryError as exc:
                raise exc.to_kran() from None
            answered = response.headers.get("docker-content-digest", digest)
            if answered != digest:
                raise errors.Internal(f"the registry stored the manifest as {answered}, expected {digest}")
            await asyncio.to_thread(self.store.record_push, source.id, ref.name(), digest, list(by_diff.values()))
        finally:
            pin.release()
        reporter.status(f"{ref.tag}: digest: {digest} size: {len(manifest)}")

    async def _layer(self, client: RegistryClient, repo: str, diff_id: str, reporter: Reporter) -> LayerSource:
        sid = short_id(diff_id)

        def listen(status: str, current: int, total: int) -> None:
            if status == PUSHING:
                reporter.bytes(sid, status, current, total)
            else:
                reporter.status(status, id=sid)

        key = (client.endpoint.host, repo, diff_id)
        return await self.uploads.run(key, lambda transfer: self._upload(client, repo, diff_id, transfer), listen)

    async def _upload(self, client: RegistryClient, repo: str, diff_id: str, transfer: Transfer) -> LayerSource:
        host = client.endpoint.host
        known = await asyncio.to_thread(self.store.layer_sources, diff_id)
        here = [s for s in known if (s.registry, s.repository) in ((host, repo), ("", ""))]
        for candidate in here:
            if await self._exists(client, repo, candidate.digest):
                transfer.emit(LAYER_EXISTS)
                return _at(candidate, host, repo)
        for candidate in (s for s in known if s.registry == host and s.repository != repo):
            if await self._mount(client, repo, candidate):
                transfer.emit(mounted_from(candidate.repository))
                return _at(candidate, host, repo)
        pushed = await self._send_layer(client, repo, diff_id, transfer)
        await asyncio.to_thread(self.store.remember_layers, [_at(pushed, "", "")])
        transfer.emit(PUSHED)
        return pushed

    async def _exists(self, client: RegistryClient, repo: str, digest: str) -> bool:
        try:
            response = await client.call("HEAD", f"/v2/{repo}/blobs/{digest}", scopes=(push_scope(repo),),
                                         expect=(200, 404))
        except RegistryError as exc:
            raise exc.to_kran() from None
        return response.status_code == 200

    async def _mount(self, client: RegistryClient, repo: str, source: LayerSource) -> bool:
        try:
            response = await client.call("POST", f"/v2/{repo}/blobs/uploads/",
                                         params={"mount": source.digest, "from": source.repository},
                                         scopes=(push_scope(repo), pull_scope(source.repository)),
                                         expect=(201, 202))
        except RegistryError as exc:
            if exc.status in (401, 403, 404):
                return False  # no right to read the other repository, or the blob is gone: upload it
            raise exc.to_kran() from None
        return response.status_code == 201

    async def _start(self, client: RegistryClient, repo: str) -> str:
        try:
            response = await client.call("POST", f"/v2/{repo}/blobs/uploads/", scopes=(push_scope(repo),),
                                         expect=(202,))
        except RegistryError as exc:
            raise exc.to_kran() from None
        location = response.headers.get("location")
        if not location:
            raise errors.Unavailable("the registry started an upload without a Location")
        return location

    async def _blob_bytes(self, client: RegistryClient, repo: str, data: bytes) -> None:
        """Monolithic upload (POST, then PUT with the body) of a small blob such as the config."""
        digest = sha256_digest(data)
        if await self._exists(client, repo, digest):
            return
        location = await self._start(client, repo)
        try:
            await client.call("PUT", location, params={"digest": digest}, scopes=(push_scope(repo),),
                              expect=(201,), headers={"Content-Type": "application/octet-stream"}, content=data)
        except RegistryError as exc:
            raise exc.to_kran() from None

    async def _send_layer(self, client: RegistryClient, repo: str, diff_id: str,
                          transfer: Transfer) -> LayerSource:
        """Compress the layer while uploading it in PATCH chunks; its compressed descriptor."""
        path = self.store.layer_path(diff_id)
        total = path.stat().st_size
        location = await self._start(client, repo)
        offset = 0
        transfer.emit(PUSHING, 0, total)
        stream = BlockGzip(path, GZIP_LEVEL)
        async for chunk in stream.chunks(CHUNK):
            try:
                response = await client.call(
                    "PATCH", location, scopes=(push_scope(repo),), expect=(202,), content=chunk,
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
            except RegistryError as exc:
                raise exc.to_kran() from None
            location = response.headers.get("location") or location
            offset += len(chunk)
            transfer.emit(PUSHING, stream.read, total)
        digest = stream.digest()
        try:
            await client.call("PUT", location, params={"digest": digest}, scopes=(push_scope(repo),),
                              expect=(201,))
        except RegistryError as exc:
            raise exc.to_kran() from None
        return LayerSource(diff_id, digest, manifests.OCI_LAYER_GZIP, offset, client.endpoint.host, repo)


def _at(source: LayerSource, registry: str, repository: str) -> LayerSource:
    return LayerSource(source.diff_id, source.digest, manifests.OCI_LAYER_GZIP
                       if source.media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip"
                       else source.media_type, source.size, registry, repository)
