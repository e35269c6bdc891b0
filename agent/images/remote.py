"""What pulls and pushes need from the image store (a mixin of ImageStore).

A pull puts its layer blobs and unpacked layers in place as it goes, under
pins (agent.images.pins) so no concurrent rmi collects them, then records
the image, its tag, the registry's manifest digest for the repository
(RepoDigests) and the compressed blobs it came from in one transaction
(`record_pulled`). A pull that fails hands what it placed to `discard`.
A push reads an image (`push_source`) and records where its layers now
are and the digest the registry gave (`record_push`), so a re-push finds
them ("Layer already exists") and another repository of the same registry
can mount them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.images.archive_load import LoadedImage
from agent.images.content import BlobStore, Written
from agent.images.layers import LayerStore
from agent.images.metadata import ImageRow, LayerSource, Metadata
from agent.images.pins import Pin, Pins
from agent.images.views import ImageView
from kran import errors, reference


@dataclass
class PulledImage:
    """An image whose config is known and whose layer blobs are committed and pinned."""

    config: bytes
    layers: list[tuple[str, int]]                # (DiffID, uncompressed size), base first
    repository: str                              # full name: docker.io/library/busybox
    manifest_digest: str                         # what the registry calls it
    tag: reference.Reference | None = None       # None for a pull by digest
    sources: list[LayerSource] = field(default_factory=list)


@dataclass(frozen=True)
class PushSource:
    """An image to push: its config bytes and its layers' DiffIDs, base first."""

    id: str
    config: bytes
    diff_ids: tuple[str, ...]


class RemoteImages:
    """ImageStore's methods for the registry client. Needs the attributes ImageStore sets."""

    _lock: threading.RLock
    blobs: BlobStore
    layers: LayerStore
    meta: Metadata
    pins: Pins

    def pin(self) -> Pin:
        """A new set of pins for work in progress (release() it when done)."""
        return self.pins.hold()

    def has_image(self, image_id: str) -> bool:
        """Whether the image `image_id` ("sha256:<hex>") is stored."""
        with self._lock:
            return self.meta.image(image_id) is not None

    def record_pulled(self, image: PulledImage) -> tuple[ImageView, bool]:
        """Record a pulled image, its tag and repo digest in one transaction.

        Returns the image and whether the tag (if any) moved to it; every
        layer blob must be committed and pinned by the caller.
        """
        placeholder = self.blobs.ingest_dir / "committed"
        # Written entries for blobs already in place: commit() finds each there and has nothing to move.
        layers = [Written(placeholder, diff_id, self.blobs.size(diff_id)) for diff_id, _ in image.layers]
        loaded = LoadedImage(image.config, layers, [image.tag] if image.tag else [])
        repo_digests = [(image.repository, image.manifest_digest, loaded.id)]
        with self._lock:
            previous = self._add([loaded], repo_digests, image.sources)  # type: ignore[attr-defined]
            view = self._view(self._row(loaded.id))  # type: ignore[attr-defined]
        moved = image.tag is not None and previous.get(image.tag.full()) != loaded.id
        return view, moved

    def discard(self, blobs: set[str], chains: set[str]) -> None:
        """Remove blobs and layers a failed pull placed, unless an image or a pin needs them."""
        with self._lock:
            self._collect(blobs, chains)  # type: ignore[attr-defined]
            self._refresh_stats()  # type: ignore[attr-defined]

    def push_source(self, text: str) -> PushSource:
        """The image a push of `text` (a tag) sends; errors.NotFound as docker push words it."""
        with self._lock:
            image_id = self.meta.lookup(reference.parse(text).full())
            if image_id is None:
                raise errors.NotFound(f"An image does not exist locally with the tag: {text}")
            row: ImageRow = self._row(image_id)  # type: ignore[attr-defined]
            return PushSource(image_id, self.blobs.read(image_id), row.diff_ids)

    def tags_of(self, repository: str) -> list[str]:
        """The tags (full form) of `repository` (full name) in this store, sorted."""
        with self._lock:
            names = [name for row in self.meta.images() for name in self.meta.refs_of(row.id)]
        return sorted(n for n in names if reference.parse(n).name() == repository)

    def layer_sources(self, diff_id: str) -> list[LayerSource]:
        """The compressed blobs known for the layer `diff_id`."""
        with self._lock:
            return self.meta.layer_sources(diff_id)

    def layer_path(self, diff_id: str) -> Path:
        """The uncompressed layer tar of `diff_id` (pin it while reading)."""
        return self.blobs.path(diff_id)

    def record_push(self, image_id: str, repository: str, manifest_digest: str,
                    sources: list[LayerSource]) -> None:
        """After a push: the registry's digest for the image in `repository` and where its layers are."""
        with self._lock:
            digests = [(repository, manifest_digest, image_id)] if self.meta.image(image_id) else []
            self.meta.add((), (), repo_digests=digests, sources=sources)

    def remember_layers(self, sources: list[LayerSource]) -> None:
        """Keep compressed blobs known for layers (a push made them, or found them in a registry)."""
        with self._lock:
            self.meta.add((), (), sources=sources)


def config_diff_ids(config: bytes) -> list[str]:
    """The DiffIDs an image config lists; errors.InvalidArgument for a config that is not one."""
    try:
        doc: Any = json.loads(config)
    except ValueError:
        raise errors.InvalidArgument("the image config is not JSON") from None
    rootfs = doc.get("rootfs") if isinstance(doc, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise errors.InvalidArgument("the image config has no rootfs.diff_ids")
    return diff_ids
