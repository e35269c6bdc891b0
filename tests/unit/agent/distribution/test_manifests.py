"""Manifest parsing, media types and platform choice from an index."""

from __future__ import annotations

import json

import pytest

from agent.distribution.manifests import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Platform, choose,
                                          media_type_of, parse_manifest, parse_platform)
from kran import errors

D = "sha256:" + "a" * 64
E = "sha256:" + "b" * 64
F = "sha256:" + "c" * 64


def entry(digest: str, os: str, arch: str, variant: str = "", **annotations: str) -> dict:
    platform = {"os": os, "architecture": arch, **({"variant": variant} if variant else {})}
    doc = {"mediaType": OCI_MANIFEST, "digest": digest, "size": 100, "platform": platform}
    if annotations:
        doc["annotations"] = annotations
    return doc


def index(*entries: dict) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)}).encode()


def test_platform_choice_skips_attestations() -> None:
    data = index(entry(E, "unknown", "unknown", **{"vnd.docker.reference.type": "attestation-manifest"}),
                 entry(F, "linux", "arm64", "v8"), entry(D, "linux", "amd64"))
    assert choose(data, Platform("linux", "amd64")).digest == D
    assert choose(data, Platform("linux", "arm64")).digest == F
    assert choose(data, Platform("linux", "arm64", "v8")).digest == F


def test_an_exact_variant_wins() -> None:
    data = index(entry(D, "linux", "arm", "v6"), entry(E, "linux", "arm", "v7"))
    assert choose(data, Platform("linux", "arm", "v7")).digest == E


def test_no_matching_platform() -> None:
    data = index(entry(D, "linux", "s390x"))
    with pytest.raises(errors.NotFound, match="no matching manifest for linux/amd64 in the manifest list entries"):
        choose(data, Platform("linux", "amd64"))


def test_media_type_from_the_document_or_the_header() -> None:
    assert media_type_of(json.dumps({"mediaType": DOCKER_MANIFEST}).encode(), "text/plain") == DOCKER_MANIFEST
    assert media_type_of(json.dumps({"manifests": []}).encode(), "") == OCI_INDEX
    assert media_type_of(b"{}", f"{DOCKER_LIST}; charset=utf-8") == DOCKER_LIST
    with pytest.raises(errors.InvalidArgument, match="schema 1"):
        media_type_of(json.dumps({"schemaVersion": 1, "fsLayers": []}).encode(), "")


def manifest(*layer_types: str) -> bytes:
    return json.dumps({"schemaVersion": 2, "config": {"mediaType": "x", "digest": D, "size": 10},
                       "layers": [{"mediaType": t, "digest": E, "size": 5} for t in layer_types]}).encode()


def test_parse_manifest() -> None:
    parsed = parse_manifest(manifest("application/vnd.docker.image.rootfs.diff.tar.gzip",
                                     "application/vnd.oci.image.layer.v1.tar+zstd"), DOCKER_MANIFEST)
    assert parsed.config.digest == D and [layer.size for layer in parsed.layers] == [5, 5]


def test_parse_manifest_refuses_bad_input() -> None:
    with pytest.raises(errors.InvalidArgument, match="unsupported media type"):
        parse_manifest(manifest("application/vnd.example.thing"), OCI_MANIFEST)
    with pytest.raises(errors.InvalidArgument, match="unsupported manifest media type"):
        parse_manifest(manifest(), "application/json")
    bad = json.dumps({"config": {"digest": "sha256:../x", "size": 1}, "layers": []}).encode()
    with pytest.raises(errors.InvalidArgument):
        parse_manifest(bad, OCI_MANIFEST)
    negative = json.dumps({"config": {"digest": D, "size": -1}, "layers": []}).encode()
    with pytest.raises(errors.InvalidArgument, match="invalid size"):
        parse_manifest(negative, OCI_MANIFEST)


def test_parse_platform() -> None:
    default = Platform("linux", "amd64")
    assert parse_platform("", default) is default
    assert parse_platform("linux/arm64/v8", default) == Platform("linux", "arm64", "v8")
    assert str(Platform("linux", "arm", "v7")) == "linux/arm/v7"
    with pytest.raises(errors.InvalidArgument):
        parse_platform("linux", default)
