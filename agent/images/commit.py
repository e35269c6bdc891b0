"""docker commit's image: its parent's config and layers, the container's config, one more layer.

As Docker does (image.NewChildImage): the new config is the container's
configuration (the parent's config with the container's effective command,
environment, working dir, user and labels) with the `changes` lines applied
on top; the history gains one entry whose created_by is the container's
command, and rootfs.diff_ids gains the layer's DiffID, unless the layer is
empty (the container changed nothing), which Docker records as an
empty_layer history entry and no new layer.
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import Any

from agent.images.archive_load import LoadedImage
from agent.images.changes import apply_changes
from agent.images.content import BlobStore, Written
from kran import errors, reference

# What a container's config decides in the committed image's config, in Docker's names.
CONTAINER_KEYS = ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Labels", "StopSignal")
# Carried over from the parent as they are.
_PLATFORM_KEYS = ("architecture", "os", "variant", "os.version", "os.features")


def is_empty_layer(path: Path) -> bool:
    """Whether the layer tar at `path` holds no entry at all."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            return tar.next() is None
    except tarfile.ReadError:
        return os.path.getsize(path) == 0


def child_config(parent: dict[str, Any], diff_id: str | None, container_config: dict[str, Any],
                 changes: list[str], message: str, author: str, created: str,
                 container_id: str = "") -> dict[str, Any]:
    """The committed image's config document.

    `container_config` holds the container's effective values under
    CONTAINER_KEYS (absent or None: the parent's value stays, an empty list
    or string clears it as the container did). `diff_id` is None for an
    empty layer. A malformed change line raises errors.InvalidArgument.
    """
    unknown = set(container_config) - set(CONTAINER_KEYS)
    if unknown:
        raise errors.InvalidArgument(f"unknown container config keys {sorted(unknown)}")
    config = dict(parent.get("config") or {})
    for key in CONTAINER_KEYS:
        value = container_config.get(key)
        if value is None:
            continue
        if value in ("", [], {}):
            config.pop(key, None)
        else:
            config[key] = value
    config = apply_changes(config, changes)
    history_entry: dict[str, Any] = {"created": created,
                                     "created_by": " ".join(container_config.get("Cmd") or [])}
    if author:
        history_entry["author"] = author
    if message:
        history_entry["comment"] = message
    return child_document(parent, config, diff_id, history_entry, author, container_id)


def child_document(parent: dict[str, Any], config: dict[str, Any], diff_id: str | None,
                   history_entry: dict[str, Any], author: str = "", container_id: str = "") -> dict[str, Any]:
    """An image config one layer (or, with `diff_id` None, one empty_layer entry) above `parent`.

    The platform comes from the parent, "config" is `config`, and
    `history_entry` (whose "created" the document takes) ends the history.
    """
    history_entry = dict(history_entry)
    if diff_id is None:
        history_entry["empty_layer"] = True
    rootfs = parent.get("rootfs") or {}
    diff_ids = list(rootfs.get("diff_ids") or []) + ([diff_id] if diff_id else [])
    doc: dict[str, Any] = {key: parent[key] for key in _PLATFORM_KEYS if key in parent}
    if author:
        doc["author"] = author
    doc["created"] = history_entry["created"]
    if container_id:
        doc["container"] = container_id
    doc["config"] = config
    doc["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    doc["history"] = list(parent.get("history") or []) + [history_entry]
    return doc


def parent_layers(blobs: BlobStore, diff_ids: tuple[str, ...], work: Path) -> list[Written]:
    """The parent's layer blobs as ingest files in `work` (hard links), for ImageStore._add.

    _add commits each layer it is given and removes the ingest file when the
    blob is already stored; a link keeps that from ever touching the blob.
    """
    layers = []
    for n, digest in enumerate(diff_ids):
        link = work / f"parent-{n}"
        os.link(blobs.path(digest), link)
        layers.append(Written(link, digest, link.stat().st_size))
    return layers


def child_image(config: dict[str, Any], layers: list[Written], ref: str | None) -> LoadedImage:
    """The image to add: its config bytes, every layer base first, and the tag (if `ref`)."""
    tags = [reference.parse_tagged(ref)] if ref else []
    return LoadedImage(json.dumps(config, separators=(",", ":")).encode(), layers, tags)
