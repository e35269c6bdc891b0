"""The agent's image store: blobs, unpacked layers and references, with Docker's semantics.

Layout under the store's root (see docs/architecture.md):

    blobs/sha256/<hex>   configs, manifests and uncompressed layer tars (content.BlobStore)
    ingest/              uploads and blobs being written
    layers/              unpacked layers by chain id (layers.LayerStore)
    metadata.db          images, their layers and references, the build cache (metadata.Metadata)

An image is added by putting its blobs and layers in place first and then
recording it in one sqlite transaction, so a crash never leaves a half image
visible; on start the store empties ingest/ and removes every blob and layer
no image needs. One lock guards the store: the gRPC servicer calls it from
worker threads.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from agent.images import commit
from agent.images.archive_load import LoadedImage, read_archive
from agent.images.archive_save import MANIFEST_TYPE, SaveEntry, write_archive
from agent.images.buildcache import BuildCache
from agent.images.changes import apply_changes
from agent.images.content import BlobStore, sha256_digest
from agent.images.layers import LayerStore, chain_id
from agent.images.metadata import ImageRow, LayerSource, Metadata
from agent.images.pins import Pins
from agent.images.remote import RemoteImages
from agent.images.views import (ImageView, LayerView, Removed, has_label, node_platform, parse_time,
                                ref_matches)
from kran import errors, reference
from kran.timefmt import now_rfc3339

CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"

_PLATFORM_RE = re.compile(r"(?P<os>[a-z0-9]+)(?:/(?P<arch>[a-z0-9_]+)(?:/(?P<variant>[a-z0-9]+))?)?")


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


class ImageStore(RemoteImages, BuildCache):
    """One node's images under `root`. Every public method is thread-safe."""

    def __init__(self, root: Path, platform: tuple[str, str, str] | None = None) -> None:
        """Open (creating) the store, clean up after a crash and collect unreferenced content.

        `platform` (os, architecture, variant) defaults to this node's; it is
        what import records and which image load picks from an index.
        """
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.platform = platform or node_platform()
        self._lock = threading.RLock()
        self.pins = Pins()
        self.blobs = BlobStore(self.root)
        self.layers = LayerStore(self.root / "layers")
        self.meta = Metadata(self.root / "metadata.db")
        self.blobs.clean_ingest()
        self._collect(self.blobs.digests(), {info.chain_id for info in self.layers.list()})
        self._refresh_stats()

    def close(self) -> None:
        """Close the metadata database."""
        with self._lock:
            self.meta.close()

    @contextmanager
    def temp_dir(self) -> Iterator[Path]:
        """A private scratch directory inside the store's ingest area, removed afterwards."""
        with self.blobs.temp_dir() as path:
            yield path

    # Reading.

    def resolve(self, text: str) -> str:
        """The id of the image `text` names: reference, full id or unique id prefix.

        Unknown -> errors.NotFound("No such image: <text>"); an ambiguous
        prefix or a malformed reference -> errors.InvalidArgument.
        """
        with self._lock:
            return self._resolve(text)[0]

    def _resolve(self, text: str) -> tuple[str, reference.Reference | None]:
        """(image id, the reference it was found by or None when found by id)."""
        if not text:
            raise errors.InvalidArgument("no image reference given")
        if reference.is_full_id(text):
            image_id = "sha256:" + text.removeprefix("sha256:")
            if self.meta.image(image_id) is None:
                raise errors.NotFound(f"No such image: {text}")
            return image_id, None
        try:
            ref: reference.Reference | None = reference.parse(text)
        except errors.InvalidArgument:
            if reference.id_prefix(text) is None:
                raise
            ref = None
        if ref is not None:
            found = self._lookup(ref)
            if found is not None:
                return found, ref
        prefix = reference.id_prefix(text)
        if prefix is not None:
            ids = self.meta.ids_with_prefix(prefix)
            if len(ids) > 1:
                raise errors.InvalidArgument(
                    f"ambiguous image id prefix {text!r}: it matches {len(ids)} images; give more digits")
            if ids:
                return ids[0], None
        raise errors.NotFound(f"No such image: {text}")

    def _lookup(self, ref: reference.Reference) -> str | None:
        if ref.digest is None:
            return self.meta.lookup(ref.full())
        pulled = self.meta.lookup_digest(ref.name(), ref.digest)
        if pulled is not None:
            return pulled
        for row in self.meta.images():
            if row.manifest_digest == ref.digest and any(
                    reference.parse(name).name() == ref.name() for name in self.meta.refs_of(row.id)):
                return row.id
        return None

    def _row(self, image_id: str) -> ImageRow:
        row = self.meta.image(image_id)
        if row is None:
            raise errors.NotFound(f"No such image: {image_id}")
        return row

    def _view(self, row: ImageRow) -> ImageView:
        config = self.blobs.read(row.id)
        doc = json.loads(config)
        labels = (doc.get("config") or {}).get("Labels") or {}
        refs = [reference.parse(name) for name in self.meta.refs_of(row.id)]
        # A registry's digest for a repository wins over the one of the store's own manifest.
        pulled = self.meta.repo_digests_of(row.id)
        repo_digests = {f"{reference.parse(name, default_tag=False).familiar_name()}@{digest}"
                        for name, digest in pulled}
        repo_digests |= {f"{r.familiar_name()}@{row.manifest_digest}" for r in refs
                         if r.name() not in {name for name, _ in pulled}}
        layers = [LayerView(diff_id=d, digest=d, media_type=LAYER_TYPE,
                            size=self.layers.get(c).size, chain_id=c)
                  for d, c in zip(row.diff_ids, row.chain_ids)]
        return ImageView(
            id=row.id,
            repo_tags=[r.familiar() for r in refs],
            repo_digests=sorted(repo_digests),
            created=parse_time(row.created), size=row.size,
            labels={str(k): str(v) for k, v in labels.items()},
            config=config, manifest=self.blobs.read(row.manifest_digest),
            manifest_digest=row.manifest_digest, layers=layers)

    def inspect(self, text: str) -> ImageView:
        """The image `text` names (reference, id or unique id prefix)."""
        with self._lock:
            return self._view(self._row(self._resolve(text)[0]))

    def list_images(self, filters: dict[str, str] | None = None) -> list[ImageView]:
        """Every image, newest first, filtered as docker images does.

        Filters: dangling=true|false, reference=PATTERN (shell pattern on the
        familiar name or name:tag; only matching tags are shown), label=K or
        label=K=V. Every image is top-level here (no intermediate images), so
        `docker images -a` lists the same.
        """
        filters = dict(filters or {})
        unknown = set(filters) - {"dangling", "reference", "label"}
        if unknown:
            raise errors.InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        dangling = None
        if "dangling" in filters:
            value = filters["dangling"].lower()
            if value not in ("true", "1", "false", "0"):
                raise errors.InvalidArgument(f"invalid filter 'dangling={filters['dangling']}'")
            dangling = value in ("true", "1")
        with self._lock:
            views = [self._view(row) for row in self.meta.images()]
        result = []
        for view in sorted(views, key=lambda v: (v.created, v.id), reverse=True):
            if dangling is not None and dangling != (not view.repo_tags):
                continue
            if "label" in filters and not has_label(view.labels, filters["label"]):
                continue
            if "reference" in filters:
                tags = [t for t in view.repo_tags if ref_matches(t, filters["reference"])]
                if not tags:
                    continue
                view = ImageView(**{**view.__dict__, "repo_tags": tags})
            result.append(view)
        return result

    def image_layers(self, text: str) -> list[Path]:
        """The unpacked layer dirs of an image, top first (overlay lowerdir order), for mounting."""
        with self._lock:
            row = self._row(self._resolve(text)[0])
            return self.layers.lowers(row.chain_ids[-1]) if row.chain_ids else []

    def stats(self) -> tuple[int, int]:
        """(number of images, bytes on disk of blobs and unpacked layers).

        Never waits for the store's lock (the agent calls it on its event
        loop): the figures are those after the last change.
        """
        return self._stats

    def _refresh_stats(self) -> None:
        """Recount after a change; called with the lock held."""
        blob_bytes = sum(self.blobs.size(d) for d in self.blobs.digests())
        layer_bytes = sum(info.size for info in self.layers.list())
        self._stats = (self.meta.count(), blob_bytes + layer_bytes)

    # Adding.

    def import_rootfs(self, source: Path, ref: str = "", changes: list[str] | tuple[str, ...] = (),
                      message: str = "", platform: str = "") -> ImageView:
        """Make a one-layer image from the rootfs tarball at `source` (docker import).

        The tarball may be plain, gzip, bzip2, xz or zstd. `ref` tags the
        image (untagged if empty); `changes` are Dockerfile lines applied to
        the config; `message` is the history comment; `platform` is os[/arch[/variant]].
        """
        tag = reference.parse_tagged(ref) if ref else None
        config = apply_changes({}, list(changes))
        os_name, arch, variant = self._platform(platform)
        created = now_rfc3339()
        comment = message or "Imported from -"
        with self.blobs.temp_dir() as work:
            with open(source, "rb") as raw:
                layer = self.blobs.write_decompressed(raw, work)
            doc: dict[str, Any] = {"architecture": arch, "os": os_name}
            if variant:
                doc["variant"] = variant
            doc.update({
                "created": created, "comment": comment, "config": config,
                "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
                "history": [{"created": created, "comment": comment}],
            })
            image = LoadedImage(_dumps(doc), [layer], [tag] if tag else [])
            with self._lock:
                self._add([image])
                return self._view(self._row(image.id))

    def commit(self, parent: str, layer_tar: Path, ref: str | None, message: str, author: str,
               changes: list[str], container_config: dict[str, Any], container_id: str = "") -> ImageView:
        """docker commit: a child of the image `parent` with the layer tar at `layer_tar` on top.

        The config is built by agent.images.commit.child_config from the
        parent's and `container_config`; `ref` tags the image (moving the
        tag); stored with the same rules as an import. Bad `changes` or
        `ref` raise errors.InvalidArgument and store nothing.
        """
        created = now_rfc3339()
        with self.blobs.temp_dir() as work:
            with open(layer_tar, "rb") as raw:
                layer = self.blobs.write_stream(raw, work)
            empty = commit.is_empty_layer(layer.path)
            with self._lock:
                row = self._row(self._resolve(parent)[0])
                config = commit.child_config(json.loads(self.blobs.read(row.id)), None if empty else layer.digest,
                                             container_config, changes, message, author, created, container_id)
                layers = commit.parent_layers(self.blobs, row.diff_ids, work) + ([] if empty else [layer])
                image = commit.child_image(config, layers, ref)
                self._add([image])
                return self._view(self._row(image.id))

    def _platform(self, text: str) -> tuple[str, str, str]:
        if not text:
            return self.platform
        match = _PLATFORM_RE.fullmatch(text.lower())
        if match is None:
            raise errors.InvalidArgument(f"invalid platform {text!r}: expected os[/arch[/variant]]")
        if match.group("os") != "linux":
            raise errors.InvalidArgument(f"unsupported platform {text!r}: only linux images can be imported")
        arch = match.group("arch") or self.platform[1]
        return "linux", arch, match.group("variant") or ""

    def load(self, archive: Path) -> tuple[list[ImageView], list[str]]:
        """Load a docker-save or OCI layout tarball; return the images and docker load's messages.

        A tag that named another image moves to the loaded one. A malformed
        archive raises errors.InvalidArgument and stores nothing.
        """
        with self.blobs.temp_dir() as work:
            images = read_archive(archive, self.blobs, work, self.platform[:2])
            if not images:
                raise errors.InvalidArgument("invalid image archive: it holds no image")
            with self._lock:
                previous = self._add(images)
                views = [self._view(self._row(image.id)) for image in images]
        messages = []
        for image in images:
            for tag in image.tags:
                old = previous.get(tag.full())
                if old is not None and old != image.id:
                    messages.append(f"The image {tag.familiar()} already exists, "
                                    f"renaming the old one with ID {old} to empty string")
                messages.append(f"Loaded image: {tag.familiar()}")
            if not image.tags:
                messages.append(f"Loaded image ID: {image.id}")
        return views, messages

    def _add(self, images: list[LoadedImage], repo_digests: list[tuple[str, str, str]] | None = None,
             sources: list[LayerSource] | None = None) -> dict[str, str]:
        """Put blobs and layers in place, then record images and tags in one transaction.

        `repo_digests` (repository, registry digest, image id) and `sources`
        (compressed blobs of layers) are recorded in the same transaction.

        Returns the image each tag named before, for the tags that existed.
        On any failure, what this call put in place and nothing needs is removed.
        """
        placed_blobs: set[str] = set()
        placed_chains: set[str] = set()
        with self._lock:
            try:
                rows = [self._place(image, placed_blobs, placed_chains) for image in images]
                tags = [(tag.full(), image.id) for image in images for tag in image.tags]
                previous = {name: old for name, _ in tags if (old := self.meta.lookup(name))}
                self.meta.add(rows, tags, repo_digests or (), sources or ())
            except BaseException:
                self._collect(placed_blobs, placed_chains)
                raise
            finally:
                self._refresh_stats()
            return previous

    def _place(self, image: LoadedImage, placed_blobs: set[str], placed_chains: set[str]) -> ImageRow:
        parent: str | None = None
        chain_ids, size, descriptors = [], 0, []
        for written in image.layers:
            if not self.blobs.has(written.digest):
                placed_blobs.add(written.digest)
            blob = self.blobs.commit(written)
            cid = chain_id(parent, written.digest)
            if not self.layers.has(cid):
                placed_chains.add(cid)
            size += self.layers.apply(parent, written.digest, blob).size
            descriptors.append({"mediaType": LAYER_TYPE, "digest": written.digest,
                                "size": written.size})
            chain_ids.append(cid)
            parent = cid
        manifest = _dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": image.id, "size": len(image.config)},
            "layers": descriptors,
        })
        for data in (image.config, manifest):
            if not self.blobs.has(sha256_digest(data)):
                placed_blobs.add(sha256_digest(data))
            self.blobs.put_bytes(data)
        created = json.loads(image.config).get("created") or ""
        return ImageRow(id=image.id, manifest_digest=sha256_digest(manifest), size=size,
                        created=str(created), added=time.time(),
                        diff_ids=tuple(w.digest for w in image.layers), chain_ids=tuple(chain_ids))

    # Changing references and deleting.

    def tag(self, source: str, target: str) -> None:
        """Point the reference `target` at the image `source` names (moving it if it existed)."""
        ref = reference.parse_tagged(target)
        with self._lock:
            image_id = self._resolve(source)[0]
            self.meta.set_ref(ref.full(), image_id)

    def remove(self, text: str, force: bool = False) -> list[Removed]:
        """docker rmi: untag a reference, deleting the image when its last reference goes.

        By id (or id prefix) the image is deleted, after untagging its one
        tag; an image with several tags needs `force`, else
        errors.FailedPrecondition. An image a container holds is never
        deleted: removing it needs `force`, which only untags it. Images here
        have no parent images, so there is nothing for rmi's "prune parents"
        to do.
        """
        with self._lock:
            image_id, ref = self._resolve(text)
            prefix = reference.id_prefix(text)
            by_id = ref is None or (prefix is not None and image_id[7:].startswith(prefix))
            records: list[Removed] = []
            names = self.meta.refs_of(image_id)
            users = self.meta.holders_of(image_id)
            if not by_id:
                assert ref is not None
                if ref.digest is None:
                    doomed = [ref.full()]
                else:  # a repo digest stands for every tag of that repository on this image
                    doomed = [n for n in names if reference.parse(n).name() == ref.name()]
                if users and not force and set(names) <= set(doomed):
                    raise errors.FailedPrecondition(
                        f'conflict: unable to remove repository reference "{text}" (must force) - '
                        f"container {users[0][:12]} is using its referenced image {image_id[7:19]}")
                for name in doomed:
                    self.meta.delete_ref(name)
                    records.append(("untagged", reference.parse(name).familiar()))
                if ref.digest is not None:
                    self.meta.delete_repo_digest(ref.name(), ref.digest)
                    records.append(("untagged", ref.familiar()))
                if self.meta.refs_of(image_id) or users:
                    return records
            elif users and not force:
                raise errors.FailedPrecondition(
                    f"conflict: unable to delete {image_id[7:19]} (must be forced) - "
                    f"image is being used by container {users[0][:12]}")
            elif len(names) > 1 and not force:
                raise errors.FailedPrecondition(
                    f"conflict: unable to delete {image_id[7:19]} (must be forced) - "
                    "image is referenced in multiple repositories")
            records += self._untag_all(image_id)
            if users:
                return records
            return records + self._delete(image_id)[0]

    def hold(self, holder: str, text: str) -> str:
        """Resolve `text` and keep that image for `holder` until release(); returns its id."""
        with self._lock:
            image_id, _ = self._resolve(text)
            self.meta.add_hold(holder, image_id)
            return image_id

    def release(self, *holders: str) -> None:
        """Let go of the images `holders` kept (the images stay until removed)."""
        with self._lock:
            self.meta.delete_holds(holders)

    def holders(self) -> set[str]:
        """Every holder that keeps an image."""
        with self._lock:
            return self.meta.holders()

    def prune(self, all_unused: bool = False) -> tuple[list[Removed], int]:
        """Delete dangling images (every image with `all_unused`) no container holds; return records and bytes freed."""
        with self._lock:
            records: list[Removed] = []
            freed = 0
            for row in self.meta.images():
                if (self.meta.refs_of(row.id) and not all_unused) or self.meta.holders_of(row.id):
                    continue
                records += self._untag_all(row.id)
                deleted, size = self._delete(row.id)
                records += deleted
                freed += size
            return records, freed

    def _untag_all(self, image_id: str) -> list[Removed]:
        records = []
        for name in self.meta.refs_of(image_id):
            self.meta.delete_ref(name)
            records.append(("untagged", reference.parse(name).familiar()))
        return records

    def _delete(self, image_id: str) -> tuple[list[Removed], int]:
        """Delete the image and whatever blobs and layers only it used."""
        row = self._row(image_id)
        self.meta.delete_image(image_id)
        before = {info.chain_id for info in self.layers.list()}
        freed = self._collect(row.blobs(), set(row.chain_ids))
        gone = [c for c in reversed(row.chain_ids) if c in before and not self.layers.has(c)]
        self._refresh_stats()
        return [("deleted", image_id)] + [("deleted", c) for c in gone], freed

    def _collect(self, blobs: set[str], chains: set[str]) -> int:
        """Remove those of `blobs` and `chains` no image needs; return the bytes freed.

        Layers go children first, so a layer never loses a parent it stands on.
        """
        needed_chains = self.meta.referenced_chains() | self.pins.chains()
        doomed = {c for c in chains if c not in needed_chains and self.layers.has(c)}
        freed = 0
        while doomed:
            infos = {info.chain_id: info for info in self.layers.list()}
            parents = {info.parent for info in infos.values()}
            leaves = [c for c in doomed if c not in parents]
            if not leaves:  # cannot happen: a layer some image needs has every parent needed too
                raise errors.Internal(f"layers {sorted(doomed)} are parents of layers still in use")
            for cid in leaves:
                freed += infos[cid].size
                self.layers.remove(cid)
                doomed.discard(cid)
        needed_blobs = self.meta.referenced_blobs() | self.pins.blobs()
        for digest in blobs - needed_blobs:
            freed += self.blobs.delete(digest)
        return freed

    # Saving.

    def save(self, texts: list[str], out: BinaryIO) -> None:
        """Write the images `texts` name to `out` as one docker-save + OCI layout tarball.

        An image named by a reference carries that tag; one named by id
        carries none (as docker save does).
        """
        if not texts:
            raise errors.InvalidArgument("no image given to save")
        with self._lock:
            chosen: dict[str, list[reference.Reference]] = {}
            for text in texts:
                image_id, ref = self._resolve(text)
                tags = chosen.setdefault(image_id, [])
                if ref is not None and ref.digest is None and ref not in tags:
                    tags.append(ref)
            entries = []
            for image_id, tags in chosen.items():
                row = self._row(image_id)
                entries.append(SaveEntry(image_id, row.manifest_digest, row.diff_ids, tuple(tags)))
            write_archive(out, entries, self.blobs)
