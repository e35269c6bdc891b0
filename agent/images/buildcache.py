"""What builds need from the image store (a mixin of ImageStore): steps, their cache, the built image.

Each build step's result is an image config with its layers, stored like
an image's (config and manifest blobs, layers unpacked by chain id) but
recorded in the `build_cache` table under the step's cache key instead
of as an image: it is not listed nor tagged, and the store's garbage
collection keeps what the cache names, across restarts. A build pins
what it uses (its base images and every step it made or reused), so a
concurrent rmi or `builder prune` cannot take it away mid-build. The
built image is then recorded as an image like any other; `prune_build_cache`
forgets cache entries and frees what only they held.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import BinaryIO

from agent.images import commit
from agent.images.archive_load import LoadedImage
from agent.images.content import BlobStore, Written
from agent.images.layers import LayerStore
from agent.images.metadata import ImageRow, Metadata
from agent.images.pins import Pin
from agent.images.remote import config_diff_ids
from agent.images.views import ImageView
from kran import reference


class BuildCache:
    """ImageStore's methods for agent.build. Needs the attributes ImageStore sets."""

    _lock: threading.RLock
    blobs: BlobStore
    layers: LayerStore
    meta: Metadata

    def pin_image(self, text: str, pin: Pin) -> tuple[str, bytes]:
        """(id, config bytes) of the image `text` names, pinned by `pin`; errors.NotFound if absent."""
        with self._lock:
            image_id = self._resolve(text)[0]  # type: ignore[attr-defined]
            row: ImageRow = self._row(image_id)  # type: ignore[attr-defined]
            pin.add(row.blobs(), row.chain_ids)
            return image_id, self.blobs.read(image_id)

    def ingest_layer(self, source: BinaryIO, work: Path) -> Written | None:
        """Hash a step's layer tar into `work` (in the ingest area); None when it holds nothing."""
        written = self.blobs.write_stream(source, work)
        if commit.is_empty_layer(written.path):
            written.path.unlink()
            return None
        return written

    def cached_step(self, key: str, pin: Pin) -> bytes | None:
        """The config a cached step made, pinned by `pin`; None if the cache has no whole entry for `key`."""
        with self._lock:
            row = self.meta.build_cache(key)
            if row is None or not all(self.blobs.has(d) for d in row.blobs()) \
                    or not all(self.layers.has(c) for c in row.chain_ids):
                return None
            pin.add(row.blobs(), row.chain_ids)
            return self.blobs.read(row.id)

    def record_step(self, key: str, config: bytes, layer: Written | None, pin: Pin) -> str:
        """Store a step's result (the config, and its new layer if any) under `key`, pinned; its id.

        The config's other layers must be stored already (pinned by the build).
        """
        diff_ids = config_diff_ids(config)
        with self._lock:
            placed_blobs: set[str] = set()
            placed_chains: set[str] = set()
            old = self.meta.build_cache(key)
            try:
                row = self._place(LoadedImage(config, self._written(diff_ids, layer), []),  # type: ignore[attr-defined]
                                  placed_blobs, placed_chains)
                pin.add(row.blobs(), row.chain_ids)
                self.meta.put_build_cache(key, ImageRow(row.id, row.manifest_digest, row.size, row.created,
                                                        time.time(), row.diff_ids, row.chain_ids))
            except BaseException:
                self._collect(placed_blobs, placed_chains)  # type: ignore[attr-defined]
                raise
            if old is not None and old.id != row.id:
                self._collect(old.blobs(), set(old.chain_ids))  # type: ignore[attr-defined]
            self._refresh_stats()  # type: ignore[attr-defined]
            return row.id

    def _written(self, diff_ids: list[str], layer: Written | None) -> list[Written]:
        """Written entries for every layer, base first: stored ones stand for themselves, `layer` is new.

        ImageStore._add commits each; for a blob already in place there is nothing to move.
        """
        placeholder = self.blobs.ingest_dir / "committed"
        stored = diff_ids[:-1] if layer is not None else diff_ids
        return [Written(placeholder, d, self.blobs.size(d)) for d in stored] + ([layer] if layer else [])

    def record_build(self, config: bytes, tags: list[str]) -> tuple[ImageView, dict[str, str]]:
        """Record the built image (whose blobs and layers a cached step holds) and point `tags` at it.

        Returns the image and the image each tag named before, for the tags that existed.
        """
        refs = [reference.parse_tagged(tag) for tag in tags]
        image = LoadedImage(config, self._written(config_diff_ids(config), None), refs)
        with self._lock:
            # A rebuild that changed nothing: the image is there and every tag names it already.
            if self.meta.image(image.id) is not None and all(self.meta.lookup(r.full()) == image.id for r in refs):
                previous = {r.full(): image.id for r in refs}
            else:
                previous = self._add([image])  # type: ignore[attr-defined]
            return self._view(self._row(image.id)), previous  # type: ignore[attr-defined]

    def prune_build_cache(self, all_entries: bool = False) -> tuple[list[str], int]:
        """Forget build cache entries and free what only they held: (their keys, bytes freed).

        Without `all_entries` only the entries whose layers no image uses go.
        """
        with self._lock:
            entries = self.meta.build_cache_entries()
            in_images = self.meta.image_chains()
            doomed = {key: row for key, row in entries.items()
                      if all_entries or not row.chain_ids or row.chain_ids[-1] not in in_images}
            self.meta.delete_build_cache(doomed)
            blobs = {digest for row in doomed.values() for digest in row.blobs()}
            chains = {chain for row in doomed.values() for chain in row.chain_ids}
            freed = self._collect(blobs, chains)  # type: ignore[attr-defined]
            self._refresh_stats()  # type: ignore[attr-defined]
            return sorted(doomed), freed
