"""Reading image archives: docker save (legacy v1.2 and Docker >= 25) and OCI image layouts.

Archives are hostile input. Nothing is extracted by member name: members are
read straight from the tar, links are resolved inside the archive's own name
space, every digest is checked against sha256:<64 hex> before it names
anything, every blob named by a digest must hash to it, and every layer must
decompress to the DiffID its config lists. A malformed archive raises
errors.InvalidArgument; the decompressed layers land in a work directory the
caller owns and removes.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from agent.images.content import BlobStore, Written, check_digest, compression_of, sha256_digest
from kran import errors, reference

MAX_JSON = 4 << 20
_MAX_LINK_HOPS = 16
_MAX_INDEX_DEPTH = 4
_HEX = r"[a-f0-9]{64}"
_CONFIG_PATH = re.compile(rf"blobs/sha256/(?P<blob>{_HEX})|(?P<legacy>{_HEX})\.json")
_LAYER_PATH = re.compile(rf"blobs/sha256/(?P<blob>{_HEX})|{_HEX}/layer\.tar")

MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
ANNOTATION_NAME = "io.containerd.image.name"
ANNOTATION_REF = "org.opencontainers.image.ref.name"


@dataclass
class LoadedImage:
    """One image read from an archive: its config bytes, its layers (uncompressed, verified), its tags."""

    config: bytes
    layers: list[Written]
    tags: list[reference.Reference] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The image id: the digest of the config."""
        return sha256_digest(self.config)


def _bad(message: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(f"invalid image archive: {message}")


def _clean(name: str) -> str | None:
    """A member name made relative and normalised; None for the root itself. Escapes are refused."""
    path = posixpath.normpath(name.lstrip("/"))
    if path == ".":
        return None
    if path == ".." or path.startswith("../"):
        raise _bad(f"member {name!r} points outside the archive")
    return path


class _Archive:
    """The members of a tar, by normalised name, read without touching the filesystem."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in tar.getmembers():
            name = _clean(member.name)
            if name is not None:
                self.members[name] = member

    def has(self, name: str) -> bool:
        return name in self.members

    def _regular(self, name: str) -> tarfile.TarInfo:
        """The regular file `name` stands for, following symbolic and hard links inside the archive."""
        current = name
        for _ in range(_MAX_LINK_HOPS):
            member = self.members.get(current)
            if member is None:
                raise _bad(f"{name!r} is missing")
            if member.isreg():
                return member
            if member.issym():
                target = member.linkname
                base = "" if target.startswith("/") else posixpath.dirname(current)
                current = _clean(posixpath.join(base, target.lstrip("/"))) or ""
            elif member.islnk():
                current = _clean(member.linkname) or ""
            else:
                raise _bad(f"{name!r} is not a regular file")
        raise _bad(f"{name!r}: too many levels of links")

    def open(self, name: str) -> BinaryIO:
        stream = self.tar.extractfile(self._regular(name))
        assert stream is not None  # a regular member always has content
        return stream

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        member = self._regular(name)
        if member.size > limit:
            raise _bad(f"{name!r} is larger than {limit} bytes")
        return self.open(name).read()

    def hash(self, name: str) -> str:
        digest = hashlib.sha256()
        with self.open(name) as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        return "sha256:" + digest.hexdigest()


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise _bad(f"{what} is not valid JSON: {exc}") from None


def _diff_ids(config: bytes) -> list[str]:
    """The DiffIDs a config lists, each checked to be sha256:<64 hex>."""
    doc = _json(config, "image config")
    rootfs = doc.get("rootfs") if isinstance(doc, dict) else None
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise _bad("image config has no rootfs.diff_ids")
    if rootfs.get("type") != "layers":
        raise _bad(f"unsupported rootfs type {rootfs.get('type')!r}")
    return [_checked(d, "diff id") for d in rootfs["diff_ids"]]


def _checked(digest: Any, what: str) -> str:
    try:
        check_digest(digest, what)
    except errors.InvalidArgument as exc:
        raise _bad(exc.message) from None
    return digest


def _tags(names: list[Any]) -> list[reference.Reference]:
    tags = []
    for name in names:
        if not isinstance(name, str):
            raise _bad(f"invalid tag {name!r}")
        tags.append(reference.parse_tagged(name))
    return tags


class _Reader:
    """Turns the members of one archive into LoadedImages, decompressing each layer once."""

    def __init__(self, archive: _Archive, blobs: BlobStore, work: Path, platform: tuple[str, str]):
        self.archive = archive
        self.blobs = blobs
        self.work = work
        self.platform = platform
        self._layers: dict[str, Written] = {}

    def layer(self, name: str, blob_digest: str | None, diff_id: str) -> Written:
        """The layer member `name`, decompressed and checked against `blob_digest` and `diff_id`."""
        if name not in self._layers:
            if blob_digest is not None and self.archive.hash(name) != blob_digest:
                raise _bad(f"layer {name!r} does not match its digest {blob_digest}")
            with self.archive.open(name) as stream:
                self._layers[name] = self.blobs.write_decompressed(stream, self.work)
        written = self._layers[name]
        if written.digest != diff_id:
            raise _bad(f"layer {name!r} has DiffID {written.digest}, but the config expects {diff_id}")
        return written

    def blob(self, digest: Any, what: str) -> bytes:
        """A small OCI blob by digest, checked to hash to it."""
        hexpart = check_digest(_checked(digest, f"{what} digest"))
        data = self.archive.read(f"blobs/sha256/{hexpart}")
        if sha256_digest(data) != digest:
            raise _bad(f"{what} blob does not match its digest {digest}")
        return data

    # docker save

    def docker_save(self) -> list[LoadedImage]:
        entries = _json(self.archive.read("manifest.json"), "manifest.json")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise _bad("manifest.json is not a list of image entries")
        return [self._docker_entry(entry) for entry in entries]

    def _docker_entry(self, entry: dict[str, Any]) -> LoadedImage:
        config_path = entry.get("Config")
        match = _CONFIG_PATH.fullmatch(config_path) if isinstance(config_path, str) else None
        if match is None:
            raise _bad(f"config path {config_path!r} is not blobs/sha256/<hex> or <hex>.json")
        config = self.archive.read(config_path)
        expected = "sha256:" + (match.group("blob") or match.group("legacy"))
        if sha256_digest(config) != expected:
            raise _bad(f"config {config_path!r} does not match its digest")
        diff_ids = _diff_ids(config)
        layer_paths = entry.get("Layers")
        if not isinstance(layer_paths, list):
            raise _bad(f"entry for {config_path!r} has no Layers list")
        if len(layer_paths) != len(diff_ids):
            raise _bad(f"{len(layer_paths)} layers listed but the config has {len(diff_ids)} DiffIDs")
        layers = []
        for path, diff_id in zip(layer_paths, diff_ids):
            layer_match = _LAYER_PATH.fullmatch(path) if isinstance(path, str) else None
            if layer_match is None:
                raise _bad(f"layer path {path!r} is not blobs/sha256/<hex> or <hex>/layer.tar")
            blob = layer_match.group("blob")
            layers.append(self.layer(path, f"sha256:{blob}" if blob else None, diff_id))
        return LoadedImage(config, layers, _tags(entry.get("RepoTags") or []))

    # OCI image layout

    def oci_layout(self) -> list[LoadedImage]:
        index = _json(self.archive.read("index.json"), "index.json")
        descriptors = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(descriptors, list):
            raise _bad("index.json has no manifests list")
        images = []
        for desc in descriptors:
            if not isinstance(desc, dict):
                raise _bad("index.json lists a descriptor that is not an object")
            manifest = self._select(desc, 0)
            if manifest is None:
                continue
            image = self._oci_image(manifest)
            image.tags = _names(desc.get("annotations") or {})
            images.append(image)
        return images

    def _select(self, desc: dict[str, Any], depth: int) -> dict[str, Any] | None:
        """The image manifest `desc` leads to on this platform; None for an attestation."""
        media_type = desc.get("mediaType")
        annotations = desc.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            return None
        data = self.blob(desc.get("digest"), "manifest")
        doc = _json(data, "manifest")
        if not isinstance(doc, dict):
            raise _bad("a manifest is not a JSON object")
        media_type = media_type or doc.get("mediaType")
        if media_type in MANIFEST_TYPES or (media_type is None and "config" in doc):
            return doc
        if media_type not in INDEX_TYPES and not (media_type is None and "manifests" in doc):
            raise _bad(f"unsupported manifest media type {media_type!r}")
        if depth >= _MAX_INDEX_DEPTH:
            raise _bad("image indexes nested too deeply")
        children = [c for c in doc.get("manifests") or [] if isinstance(c, dict)
                    and (c.get("annotations") or {}).get("vnd.docker.reference.type") != "attestation-manifest"
                    and (c.get("platform") or {}).get("architecture") != "unknown"]
        os_name, arch = self.platform
        matching = [c for c in children if not c.get("platform")
                    or (c["platform"].get("os"), c["platform"].get("architecture")) == (os_name, arch)]
        if not matching:
            raise _bad(f"no image for platform {os_name}/{arch} in the index {desc.get('digest')}")
        return self._select(matching[0], depth + 1)

    def _oci_image(self, manifest: dict[str, Any]) -> LoadedImage:
        config_desc = manifest.get("config")
        if not isinstance(config_desc, dict):
            raise _bad("a manifest has no config descriptor")
        config = self.blob(config_desc.get("digest"), "config")
        diff_ids = _diff_ids(config)
        descriptors = manifest.get("layers")
        if not isinstance(descriptors, list):
            raise _bad("a manifest has no layers list")
        if len(descriptors) != len(diff_ids):
            raise _bad(f"{len(descriptors)} layers listed but the config has {len(diff_ids)} DiffIDs")
        layers = []
        for desc, diff_id in zip(descriptors, diff_ids):
            digest = _checked(desc.get("digest") if isinstance(desc, dict) else None, "layer digest")
            layers.append(self.layer(f"blobs/sha256/{check_digest(digest)}", digest, diff_id))
        return LoadedImage(config, layers)


def _names(annotations: dict[str, Any]) -> list[reference.Reference]:
    """The tag an index entry names: the full containerd name, else a ref.name that is a reference.

    A bare tag in org.opencontainers.image.ref.name ("latest") names no
    repository, so such an entry loads untagged.
    """
    name = annotations.get(ANNOTATION_NAME)
    if not isinstance(name, str) or not name:
        name = annotations.get(ANNOTATION_REF)
        if not isinstance(name, str) or not any(c in name for c in "/:@"):
            return []
    ref = reference.parse(name)
    return [] if ref.digest is not None else [ref]


def read_archive(path: Path, blobs: BlobStore, work: Path, platform: tuple[str, str]) -> list[LoadedImage]:
    """Read the (possibly compressed) archive at `path` into verified images, layers under `work`.

    `platform` is (os, architecture), used to pick an image from an index.
    Images found under several names are merged, tags kept in order.
    """
    with open(path, "rb") as raw:
        compressed = compression_of(raw.read(6)) is not None
        raw.seek(0)
        tar_path = blobs.write_decompressed(raw, work).path if compressed else path
    try:
        tar = tarfile.open(tar_path, mode="r:")
    except tarfile.TarError as exc:
        raise errors.InvalidArgument(f"invalid image archive: not a tar archive ({exc})") from None
    with tar:
        try:
            archive = _Archive(tar)
            reader = _Reader(archive, blobs, work, platform)
            if archive.has("manifest.json"):
                images = reader.docker_save()
            elif archive.has("index.json"):
                images = reader.oci_layout()
            else:
                raise _bad("neither manifest.json nor index.json found; "
                           "expected a docker save or OCI image layout tarball")
        except tarfile.TarError as exc:
            raise _bad(f"broken tar archive ({exc})") from None
    if compressed:
        tar_path.unlink()
    merged: dict[str, LoadedImage] = {}
    for image in images:
        if image.id in merged:
            merged[image.id].tags += [t for t in image.tags if t not in merged[image.id].tags]
        else:
            merged[image.id] = image
    return list(merged.values())
