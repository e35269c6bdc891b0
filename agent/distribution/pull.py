"""docker pull: manifest, config, then layers several at a time, into the image store.

Order of work, as Docker does it: resolve the reference, GET the manifest
(digest checked; from an index the node's platform is chosen), GET the
config, then download the missing layers concurrently (shared with any
other pull of the same layer on this node, at most --max-concurrent-downloads
at once), each checked for size and digest as it streams, decompressed on
the way and checked against the config's DiffID, and committed to the
store as an uncompressed blob. Layers are unpacked in order as they
arrive. Last, image, tag and repo digest are recorded in one transaction.

A pull that fails removes what it placed that nothing else needs; a pull
cut off by a crash leaves blobs and layers no image names, which the
store removes when it starts. A download whose connection drops resumes
with a Range request.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.distribution import manifests
from agent.distribution.auth import Credentials, pull_scope
from agent.distribution.client import RegistryClient, RegistryError, error_codes, connect, next_link
from agent.distribution.manifests import Descriptor, Platform
from agent.distribution.progress import (ALREADY_EXISTS, DOWNLOAD_COMPLETE, DOWNLOADING, EXTRACTING,
                                         PULL_COMPLETE, PULLING_FS_LAYER, VERIFYING, Reporter, short_id)
from agent.distribution.registries import RegistryOptions
from agent.distribution.transfers import Transfer, Transfers
from agent.distribution.verify import BlobCheck, BombLimit, LayerWriter, check_bytes
from agent.images.content import Written, sha256_digest
from agent.images.layers import chain_id
from agent.images.metadata import LayerSource
from agent.images.pins import Pin
from agent.images.remote import PulledImage, config_diff_ids
from agent.images.store import ImageStore
from kran import errors, reference

RESUMES = 3            # a dropped download continues from where it stopped this many times
BATCH = 1 << 20        # bytes handed to the worker thread at once


@dataclass
class _Layer:
    """One layer of the image being pulled."""

    descriptor: Descriptor
    diff_id: str
    chain_id: str
    parent: str | None
    exists: bool
    size: int = 0


class Puller:
    """Pulls images into one node's store; one per agent, shared by its calls."""

    def __init__(self, store: ImageStore, options: RegistryOptions, limit: BombLimit = BombLimit()) -> None:
        self.store = store
        self.options = options
        self.limit = limit
        self.downloads = Transfers(options.max_downloads)

    async def pull(self, text: str, reporter: Reporter, credentials: Credentials,
                   platform: str = "", all_tags: bool = False) -> None:
        """Pull `text` (name[:tag|@digest]), reporting to `reporter`; errors as kran errors."""
        ref = reference.parse(text, default_tag=not all_tags)
        default = Platform(*self.store.platform)
        wanted = manifests.parse_platform(platform, default)
        if all_tags and (ref.tag or ref.digest):
            raise errors.InvalidArgument("tag can't be used with --all-tags/-a")
        credentials = credentials.for_registry(ref.domain)
        client = await connect(ref.domain, self.options, credentials, pull=True)
        started: list[asyncio.Task[Any]] = []
        try:
            if not all_tags:
                await self._pull(client, ref, wanted, bool(platform), reporter, credentials, started)
                return
            for tag in await _tags(client, ref):
                await self._pull(client, ref.with_tag(tag), wanted, bool(platform), reporter, credentials, started)
            reporter.status(f"Status: Downloaded newer image for {ref.familiar_name()}")
        finally:
            # Downloads this pull started may still serve another pull: keep the connection for them.
            await asyncio.gather(*(t for t in started if not t.done()), return_exceptions=True)
            await client.close()

    async def _pull(self, client: RegistryClient, ref: reference.Reference, wanted: Platform, explicit: bool,
                    reporter: Reporter, credentials: Credentials, started: list[asyncio.Task[Any]]) -> None:
        repo = ref.path
        name = ref.tag or ref.digest or ""
        data, media_type, digest = await self._manifest(client, ref, name, credentials)
        reporter.status(f"Pulling from {repo}", id=name)
        if media_type in manifests.INDEX_TYPES:
            chosen = manifests.choose(data, wanted)
            data, media_type, _ = await self._manifest(client, ref, chosen.digest, credentials, chosen)
        manifest = manifests.parse_manifest(data, media_type)
        image_id = manifest.config.digest
        known = await asyncio.to_thread(self.store.has_image, image_id)
        config = (await asyncio.to_thread(self.store.blobs.read, image_id) if known
                  else await self._config(client, repo, manifest.config))
        if explicit:
            found = manifests.config_platform(config)
            if (found.os, found.architecture) != (wanted.os, wanted.architecture):
                raise errors.NotFound(f"image with reference {ref.familiar()} was found but its platform "
                                      f"({found}) does not match the specified platform ({wanted})")
        diff_ids = config_diff_ids(config)
        if len(diff_ids) != len(manifest.layers):
            raise errors.InvalidArgument(f"the manifest of {ref.familiar()} lists {len(manifest.layers)} layers, "
                                         f"its config {len(diff_ids)} DiffIDs")
        pin = self.store.pin()
        placed_blobs: set[str] = set()
        placed_chains: set[str] = set()
        try:
            layers = self._plan(manifest.layers, diff_ids, pin)
            await self._layers(client, repo, layers, reporter, placed_blobs, placed_chains, started)
            sources = [LayerSource(layer.diff_id, layer.descriptor.digest, layer.descriptor.media_type,
                                   layer.descriptor.size, client.endpoint.host, repo) for layer in layers]
            pulled = PulledImage(config, [(layer.diff_id, layer.size) for layer in layers], ref.name(), digest,
                                 ref if ref.tag else None, sources)
            _, moved = await asyncio.to_thread(self.store.record_pulled, pulled)
        except BaseException:
            pin.release()
            await asyncio.to_thread(self.store.discard, placed_blobs, placed_chains)
            raise
        pin.release()
        newer = moved if ref.tag else not known
        reporter.status(f"Digest: {digest}")
        reporter.status(f"Status: {'Downloaded newer image' if newer else 'Image is up to date'} "
                        f"for {ref.familiar()}")

    async def _manifest(self, client: RegistryClient, ref: reference.Reference, name: str,
                        credentials: Credentials, expected: Descriptor | None = None) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of the manifest or index `name` (a tag or digest), verified."""
        repo = ref.path
        try:
            response = await client.call("GET", f"/v2/{repo}/manifests/{name}", scopes=(pull_scope(repo),),
                                         headers={"Accept": manifests.ACCEPT}, limit=manifests.MAX_MANIFEST)
        except RegistryError as exc:
            if exc.has("MANIFEST_UNKNOWN") and not await _repository_exists(client, repo):
                exc = RegistryError(404, "Not Found", (("NAME_UNKNOWN", "repository name not known to registry"),))
            raise _pull_error(exc, ref, credentials) from None
        data = response.content
        actual = sha256_digest(data)
        if expected is not None:
            check_bytes(data, expected.digest, expected.size, "manifest")
        elif name.startswith("sha256:") and actual != name:
            raise errors.InvalidArgument(f"manifest {name}: digest mismatch: the content hashes to {actual}")
        header = response.headers.get("docker-content-digest", "")
        if header.startswith("sha256:") and header != actual:
            raise errors.InvalidArgument(f"manifest for {ref.familiar()}: the registry says its digest is "
                                         f"{header}, the content hashes to {actual}")
        return data, manifests.media_type_of(data, response.headers.get("content-type", "")), actual

    async def _config(self, client: RegistryClient, repo: str, config: Descriptor) -> bytes:
        if config.size > manifests.MAX_CONFIG:
            raise errors.InvalidArgument(f"image config {config.digest} is {config.size} bytes, "
                                         f"more than the {manifests.MAX_CONFIG} allowed")
        try:
            response = await client.call("GET", f"/v2/{repo}/blobs/{config.digest}", scopes=(pull_scope(repo),),
                                         limit=manifests.MAX_CONFIG)
        except RegistryError as exc:
            raise exc.to_kran() from None
        check_bytes(response.content, config.digest, config.size, "image config")
        return response.content

    def _plan(self, descriptors: tuple[Descriptor, ...], diff_ids: list[str], pin: Pin) -> list[_Layer]:
        """The layers with their chain ids, pinned, and which of them are already stored."""
        layers, parent = [], None
        for desc, diff_id in zip(descriptors, diff_ids):
            cid = chain_id(parent, diff_id)
            layers.append(_Layer(desc, diff_id, cid, parent, exists=False))
            parent = cid
        pin.add(blobs=[layer.diff_id for layer in layers], chains=[layer.chain_id for layer in layers])
        for layer in layers:  # checked after pinning, so nothing collects them meanwhile
            layer.exists = self.store.blobs.has(layer.diff_id)
            if layer.exists:
                layer.size = self.store.blobs.size(layer.diff_id)
        return layers

    async def _layers(self, client: RegistryClient, repo: str, layers: list[_Layer], reporter: Reporter,
                      placed_blobs: set[str], placed_chains: set[str], started: list[asyncio.Task[Any]]) -> None:
        """Download what is missing, concurrently, and unpack every layer in order."""
        for layer in layers:
            sid = short_id(layer.descriptor.digest)
            reporter.status(ALREADY_EXISTS if layer.exists else PULLING_FS_LAYER, id=sid)
        downloads = {}
        for layer in layers:
            if not layer.exists and layer.diff_id not in downloads:
                placed_blobs.add(layer.diff_id)
                downloads[layer.diff_id] = asyncio.create_task(
                    self._download(client, repo, layer, reporter, started))
        try:
            for layer in layers:
                if layer.diff_id in downloads:
                    layer.size = await downloads[layer.diff_id]
                if self.store.layers.has(layer.chain_id):
                    if not layer.exists:
                        reporter.status(PULL_COMPLETE, id=short_id(layer.descriptor.digest))
                    continue
                await self._extract(layer, reporter, placed_chains)
        finally:
            for task in downloads.values():
                task.cancel()
            await asyncio.gather(*downloads.values(), return_exceptions=True)

    async def _extract(self, layer: _Layer, reporter: Reporter, placed_chains: set[str]) -> None:
        sid, total = short_id(layer.descriptor.digest), layer.descriptor.size
        if not layer.exists:
            reporter.bytes(sid, EXTRACTING, 0, total)
        placed_chains.add(layer.chain_id)
        await asyncio.to_thread(self.store.layers.apply, layer.parent, layer.diff_id,
                                self.store.blobs.path(layer.diff_id))
        if not layer.exists:
            reporter.bytes(sid, EXTRACTING, total, total)
            reporter.status(PULL_COMPLETE, id=sid)

    async def _download(self, client: RegistryClient, repo: str, layer: _Layer, reporter: Reporter,
                        started: list[asyncio.Task[Any]]) -> int:
        """The layer's uncompressed size once its blob is committed (by this pull or a shared download)."""
        sid = short_id(layer.descriptor.digest)

        def listen(status: str, current: int, total: int) -> None:
            if status in (DOWNLOADING,):
                reporter.bytes(sid, status, current, total)
            else:
                reporter.status(status, id=sid)

        key = (layer.descriptor.digest, layer.diff_id)
        return await self.downloads.run(
            key, lambda transfer: self._fetch(client, repo, layer, transfer), listen, started)

    async def _fetch(self, client: RegistryClient, repo: str, layer: _Layer, transfer: Transfer) -> int:
        """Download, check, decompress and commit one layer blob; its uncompressed size."""
        if self.store.blobs.has(layer.diff_id):  # another pull stored it while this one waited
            transfer.emit(DOWNLOAD_COMPLETE)
            return self.store.blobs.size(layer.diff_id)
        desc = layer.descriptor
        what = f"layer {short_id(desc.digest)}"
        with self.store.temp_dir() as work:
            path = work / "layer.tar"
            with open(path, "wb") as out:
                check = BlobCheck(desc.digest, desc.size, what)
                writer = LayerWriter(out, desc.size, what, self.limit)
                await self._receive(client, repo, desc, check, writer, out, path, transfer)
                transfer.emit(VERIFYING)
                check.finish()
                diff_id, size = await asyncio.to_thread(writer.finish)
                if diff_id != layer.diff_id:
                    raise errors.InvalidArgument(f"{what}: the layer decompresses to {diff_id}, "
                                                 f"but the image config says {layer.diff_id}")
                await asyncio.to_thread(_sync, out)
            await asyncio.to_thread(self.store.blobs.commit, Written(path, diff_id, size))
        transfer.emit(DOWNLOAD_COMPLETE)
        return size

    async def _receive(self, client: RegistryClient, repo: str, desc: Descriptor, check: BlobCheck,
                       writer: LayerWriter, out: Any, path: Path, transfer: Transfer) -> None:
        """Stream the blob into check and writer, resuming with Range after a dropped connection."""
        resumes = 0
        batch = bytearray()
        batches = _Batches(check, writer)
        try:
            while True:
                headers = {"Range": f"bytes={check.received}-"} if check.received else {}
                try:
                    response = await client.send("GET", f"/v2/{repo}/blobs/{desc.digest}",
                                                 scopes=(pull_scope(repo),), headers=headers)
                    try:
                        if response.status_code not in (200, 206):
                            await response.aread()
                            raise RegistryError(response.status_code, response.reason_phrase,
                                                error_codes(response.content)).to_kran()
                        if check.received and response.status_code == 200:
                            raise errors.Unavailable(f"the registry cannot resume the download of {desc.digest}")
                        transfer.emit(DOWNLOADING, check.received, desc.size)
                        async for chunk in client.chunks(response):
                            check.count(len(chunk))
                            batch += chunk
                            if len(batch) >= BATCH:
                                batch = await batches.hand(batch)
                                transfer.emit(DOWNLOADING, check.received, desc.size)
                    finally:
                        await response.aclose()
                except errors.Unavailable:
                    if resumes >= RESUMES or check.received >= desc.size:
                        raise
                    resumes += 1  # what arrived is counted and kept: continue after it
                else:
                    await batches.hand(batch)
                    await batches.drain()
                    transfer.emit(DOWNLOADING, check.received, desc.size)
                    return
        finally:
            await batches.settle()


class _Batches:
    """A download's batches hashed, decompressed and written in a worker thread, in order.

    One batch is worked on while the next arrives, so receiving and
    decompressing overlap, and the event loop never hashes.
    """

    def __init__(self, check: BlobCheck, writer: LayerWriter) -> None:
        self.check, self.writer = check, writer
        self._busy: asyncio.Future[None] | None = None

    def _work(self, data: bytearray) -> None:
        self.check.hash(data)
        self.writer.write(data)

    async def hand(self, batch: bytearray) -> bytearray:
        """Wait for the batch before (raising its error), then start on this one; a new batch to fill."""
        await self.drain()
        if batch:
            self._busy = asyncio.ensure_future(asyncio.to_thread(self._work, batch))
        return bytearray()

    async def drain(self) -> None:
        """Wait until the batches handed over are done; the error of one that failed."""
        if self._busy is not None:
            await asyncio.shield(self._busy)  # if this is cancelled, the worker goes on and settle() waits
            self._busy = None

    async def settle(self) -> None:
        """On the way out: wait for the worker (it writes to a file the caller closes next), dropping its error."""
        busy, self._busy = self._busy, None
        if busy is not None:
            await asyncio.wait([busy])
            if not busy.cancelled():
                busy.exception()


def _sync(out: Any) -> None:
    out.flush()
    os.fsync(out.fileno())


def _pull_error(exc: RegistryError, ref: reference.Reference, credentials: Credentials) -> errors.KranError:
    """Docker's words for a manifest that cannot be had."""
    if exc.has("MANIFEST_UNKNOWN") or (exc.status == 404 and not exc.has("NAME_UNKNOWN") and not exc.codes):
        return errors.NotFound(f"manifest for {ref.familiar()} not found: {exc.text()}")
    if exc.status in (401, 403) and credentials:
        return exc.to_kran()
    if exc.has("NAME_UNKNOWN", "DENIED", "UNAUTHORIZED") or exc.status in (401, 403, 404):
        return errors.NotFound(
            f"pull access denied for {ref.familiar_name()}, repository does not exist or may require "
            "'docker login': denied: requested access to the resource is denied")
    return exc.to_kran()


async def _repository_exists(client: RegistryClient, repo: str) -> bool:
    """Whether the registry knows the repository (some registries say "manifest unknown" for both)."""
    try:
        await client.call("GET", f"/v2/{repo}/tags/list", params={"n": "1"}, scopes=(pull_scope(repo),))
    except RegistryError as exc:
        return not exc.has("NAME_UNKNOWN") and exc.status != 404
    return True


async def _tags(client: RegistryClient, ref: reference.Reference) -> list[str]:
    """Every tag of the repository (following the registry's pagination)."""
    repo, tags = ref.path, []
    path: str | None = f"/v2/{repo}/tags/list"
    while path:
        try:
            response = await client.call("GET", path, scopes=(pull_scope(repo),), limit=manifests.MAX_MANIFEST)
        except RegistryError as exc:
            raise _pull_error(exc, ref, client.credentials) from None
        doc = response.json()
        tags += [t for t in (doc.get("tags") or []) if isinstance(t, str)]
        path = next_link(response.headers.get("link", ""))
    if not tags:
        raise errors.NotFound(f"no tags in {ref.familiar_name()}")
    return sorted(tags)


