"""Writing image archives: one tar that is both a Docker >= 25 `docker save` and an OCI image layout.

    blobs/sha256/<hex>   configs, manifests and (uncompressed) layer tars
    oci-layout           {"imageLayoutVersion": "1.0.0"}
    index.json           one manifest descriptor per tag (untagged: one without annotations),
                         annotated with io.containerd.image.name and org.opencontainers.image.ref.name
    manifest.json        docker save's [{"Config", "RepoTags", "Layers"}], paths into blobs/
    repositories         {"busybox": {"latest": "<image id hex>"}}
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from agent.images.archive_load import ANNOTATION_NAME, ANNOTATION_REF
from agent.images.content import BlobStore, check_digest
from kran.reference import Reference

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class SaveEntry:
    """One image to save: its id, manifest digest, layer blob digests (base first) and tags."""

    image_id: str
    manifest_digest: str
    layer_digests: tuple[str, ...]
    tags: tuple[Reference, ...]


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{check_digest(digest)}"


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_blob(tar: tarfile.TarFile, blobs: BlobStore, digest: str) -> None:
    path = blobs.path(digest)
    with open(path, "rb") as stream:
        info = tarfile.TarInfo(_blob_name(digest))
        info.size = path.stat().st_size
        info.mode = 0o644
        tar.addfile(info, stream)


def _dumps(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def write_archive(out: BinaryIO, entries: list[SaveEntry], blobs: BlobStore) -> None:
    """Write `entries` to `out` as a streamed tar (the caller keeps the blobs from changing)."""
    index_descriptors = []
    docker_manifest = []
    repositories: dict[str, dict[str, str]] = {}
    seen: list[str] = []
    for entry in entries:
        for digest in (entry.image_id, entry.manifest_digest, *entry.layer_digests):
            if digest not in seen:
                seen.append(digest)
        descriptor = {"mediaType": MANIFEST_TYPE, "digest": entry.manifest_digest,
                      "size": blobs.size(entry.manifest_digest)}
        for tag in entry.tags:
            index_descriptors.append({**descriptor, "annotations": {
                ANNOTATION_NAME: tag.full(), ANNOTATION_REF: tag.tag}})
            repositories.setdefault(tag.familiar_name(), {})[tag.tag or ""] = check_digest(entry.image_id)
        if not entry.tags:
            index_descriptors.append(descriptor)
        docker_manifest.append({
            "Config": _blob_name(entry.image_id),
            "RepoTags": [tag.familiar() for tag in entry.tags],
            "Layers": [_blob_name(d) for d in entry.layer_digests],
        })
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        for digest in seen:
            _add_blob(tar, blobs, digest)
        _add_bytes(tar, "index.json", _dumps({
            "schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": index_descriptors}))
        _add_bytes(tar, "manifest.json", _dumps(docker_manifest))
        _add_bytes(tar, "oci-layout", _dumps({"imageLayoutVersion": "1.0.0"}))
        _add_bytes(tar, "repositories", _dumps(repositories))
