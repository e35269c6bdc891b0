"""Manifests and indexes as registries serve them: media types, parsing, platform choice.

OCI and Docker v2 schema 2 manifests and their indexes / manifest lists are
read; schema 1 is refused (containerd 2 and Docker 28 dropped it). From an
index the entry for the wanted platform is chosen, skipping BuildKit's
attestation entries (platform unknown/unknown).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agent.images.content import check_digest
from kran import errors

MAX_MANIFEST = 4 << 20
MAX_CONFIG = 8 << 20

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
# What containerd sends: every manifest and index type, then anything.
ACCEPT = ", ".join((DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX, "*/*"))

LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}
_ATTESTATION = "attestation-manifest"
_PLATFORM = re.compile(r"(?P<os>[a-z0-9]+)/(?P<arch>[a-z0-9_]+)(?:/(?P<variant>[a-z0-9]+))?")


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: media type, digest, size."""

    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """An image manifest: its config and layers, base first."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Platform:
    """os/architecture[/variant]."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def parse_platform(text: str, default: Platform) -> Platform:
    """A --platform value: "os/arch[/variant]"; "" is `default`."""
    if not text:
        return default
    match = _PLATFORM.fullmatch(text.strip().lower())
    if match is None:
        raise errors.InvalidArgument(f"invalid platform {text!r}: expected os/arch[/variant]")
    return Platform(match["os"], match["arch"], match["variant"] or "")


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError:
        raise errors.InvalidArgument(f"{what} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise errors.InvalidArgument(f"{what} is not a JSON object")
    return doc


def descriptor(doc: Any, what: str) -> Descriptor:
    """A descriptor from JSON, with its digest and size checked."""
    if not isinstance(doc, dict):
        raise errors.InvalidArgument(f"{what}: descriptor is not an object")
    digest = doc.get("digest")
    check_digest(digest, f"{what} digest")
    size = doc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise errors.InvalidArgument(f"{what} {digest}: invalid size {size!r}")
    return Descriptor(str(doc.get("mediaType") or ""), digest, size)


def media_type_of(data: bytes, content_type: str) -> str:
    """The document's media type: its mediaType field, else the Content-Type without parameters."""
    declared = content_type.split(";", 1)[0].strip().lower()
    try:
        doc = json.loads(data)
    except ValueError:
        return declared
    if isinstance(doc, dict):
        if doc.get("schemaVersion") == 1:
            raise errors.InvalidArgument(
                "Docker Image Format v1 and Docker Image manifest version 2, schema 1 are not supported: "
                "push the image again with a current tool")
        if isinstance(doc.get("mediaType"), str):
            return doc["mediaType"]
        if "manifests" in doc:
            return OCI_INDEX
        if "layers" in doc:
            return OCI_MANIFEST
    return declared


def parse_manifest(data: bytes, media_type: str) -> Manifest:
    """An image manifest; errors.InvalidArgument for anything else or an unknown layer type."""
    doc = _json(data, "manifest")
    if media_type not in MANIFEST_TYPES:
        raise errors.InvalidArgument(f"unsupported manifest media type {media_type!r}")
    config = descriptor(doc.get("config"), "config")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise errors.InvalidArgument("manifest has no layers list")
    parsed = tuple(descriptor(layer, "layer") for layer in layers)
    for layer in parsed:
        if layer.media_type not in LAYER_TYPES:
            raise errors.InvalidArgument(f"layer {layer.digest}: unsupported media type {layer.media_type!r}")
    return Manifest(media_type, config, parsed)


def _matches(entry: dict[str, Any], wanted: Platform) -> bool:
    platform = entry.get("platform") or {}
    if (platform.get("os"), platform.get("architecture")) != (wanted.os, wanted.architecture):
        return False
    variant = platform.get("variant") or ""
    return not wanted.variant or not variant or variant == wanted.variant


def _attestation(entry: dict[str, Any]) -> bool:
    annotations = entry.get("annotations") or {}
    platform = entry.get("platform") or {}
    return (annotations.get("vnd.docker.reference.type") == _ATTESTATION
            or (platform.get("os"), platform.get("architecture")) == ("unknown", "unknown"))


def choose(data: bytes, wanted: Platform) -> Descriptor:
    """The manifest of an index for `wanted`; errors.NotFound as Docker words it when there is none.

    An entry whose variant equals the wanted one beats one without variant.
    """
    doc = _json(data, "image index")
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise errors.InvalidArgument("image index has no manifests list")
    candidates = [e for e in entries if isinstance(e, dict) and not _attestation(e) and _matches(e, wanted)]
    candidates.sort(key=lambda e: (e.get("platform") or {}).get("variant", "") != wanted.variant)
    if not candidates:
        raise errors.NotFound(f"no matching manifest for {wanted} in the manifest list entries")
    chosen = descriptor(candidates[0], "manifest")
    if chosen.media_type and chosen.media_type not in MANIFEST_TYPES:
        raise errors.InvalidArgument(f"unsupported manifest media type {chosen.media_type!r} in the index")
    return chosen


def config_platform(config: bytes) -> Platform:
    """The platform an image config declares."""
    doc = _json(config, "image config")
    return Platform(str(doc.get("os") or ""), str(doc.get("architecture") or ""), str(doc.get("variant") or ""))
