"""docker save / docker load / OCI layouts through the image store, including hostile archives."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from agent.images.store import ImageStore
from tests.unit.agent.images.imagekit import (busybox_rootfs, descriptor, digest, hexof, image_config, layer_tar, legacy_save,
                      oci_manifest, write_tar)
from kran import errors

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
L0 = layer_tar({"etc/base": b"base\n", "bin/tool": b"#!/bin/sh\n"})
L1 = layer_tar({"etc/top": b"top\n"})


@pytest.fixture
def stores(sandbox: Path):  # noqa: F811
    opened = []

    def make(name: str) -> ImageStore:
        opened.append(ImageStore(sandbox / name))
        return opened[-1]
    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(stores) -> ImageStore:
    return stores("images")


def _state(store: ImageStore) -> tuple:
    """Everything a load could change: images, tags, blobs, layers, ingest leftovers."""
    return ([(v.id, v.repo_tags) for v in store.list_images()], store.blobs.digests(),
            {layer.chain_id for layer in store.layers.list()}, os.listdir(store.blobs.ingest_dir))


def _save(store: ImageStore, refs: list[str], path: Path) -> Path:
    with open(path, "wb") as out:
        store.save(refs, out)
    return path


def test_save_then_load_round_trip(store, stores, sandbox):  # noqa: F811
    view = store.import_rootfs(busybox_rootfs(sandbox / "rootfs.tar"), "busybox:1.36", ["CMD sh"])
    store.tag("busybox:1.36", "myreg:5000/tools/bb:v1")
    archive = _save(store, ["busybox:1.36", "myreg:5000/tools/bb:v1"], sandbox / "save.tar")

    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("manifest.json"))
        index = json.load(tar.extractfile("index.json"))
        layout = json.load(tar.extractfile("oci-layout"))
        repositories = json.load(tar.extractfile("repositories"))
    hexes = [view.id[7:], view.manifest_digest[7:], view.layers[0].digest[7:]]
    assert {f"blobs/sha256/{h}" for h in hexes} <= names
    assert manifest == [{"Config": f"blobs/sha256/{view.id[7:]}",
                         "RepoTags": ["busybox:1.36", "myreg:5000/tools/bb:v1"],
                         "Layers": [f"blobs/sha256/{view.layers[0].digest[7:]}"]}]
    assert layout == {"imageLayoutVersion": "1.0.0"}
    assert repositories == {"busybox": {"1.36": view.id[7:]}, "myreg:5000/tools/bb": {"v1": view.id[7:]}}
    assert [d["annotations"] for d in index["manifests"]] == [
        {"io.containerd.image.name": "docker.io/library/busybox:1.36",
         "org.opencontainers.image.ref.name": "1.36"},
        {"io.containerd.image.name": "myreg:5000/tools/bb:v1", "org.opencontainers.image.ref.name": "v1"}]
    assert {d["digest"] for d in index["manifests"]} == {view.manifest_digest}

    fresh = stores("fresh")
    views, messages = fresh.load(archive)
    assert messages == ["Loaded image: busybox:1.36", "Loaded image: myreg:5000/tools/bb:v1"]
    loaded = fresh.inspect("busybox:1.36")
    assert [v.id for v in views] == [loaded.id] == [view.id]
    assert loaded.config == view.config and loaded.manifest_digest == view.manifest_digest
    assert sorted(loaded.repo_tags) == ["busybox:1.36", "myreg:5000/tools/bb:v1"]
    assert (fresh.image_layers(view.id)[0] / "bin" / "busybox").is_file()
    # Loading the same archive again changes nothing.
    assert fresh.load(archive)[1] == messages and len(fresh.list_images()) == 1


def test_the_oci_half_of_a_save_loads_alone(store, stores, sandbox):  # noqa: F811
    view = store.import_rootfs(write_tar(sandbox / "r.tar", {"a": b"a"}), "app:1")
    archive = _save(store, ["app:1"], sandbox / "save.tar")
    oci_only = sandbox / "oci.tar"
    with tarfile.open(archive) as src, tarfile.open(oci_only, "w") as dst:
        for member in src.getmembers():
            if member.name not in ("manifest.json", "repositories"):
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    fresh = stores("fresh")
    assert fresh.load(oci_only)[1] == ["Loaded image: app:1"]
    assert fresh.inspect("app:1").id == view.id


def test_save_by_id_is_untagged_and_gzip_archives_load(store, stores, sandbox):  # noqa: F811
    view = store.import_rootfs(write_tar(sandbox / "r.tar", {"a": b"a"}), "app:1")
    archive = _save(store, [view.id[7:19]], sandbox / "save.tar")
    packed = sandbox / "save.tar.gz"
    packed.write_bytes(gzip.compress(archive.read_bytes()))
    fresh = stores("fresh")
    views, messages = fresh.load(packed)
    assert messages == [f"Loaded image ID: {view.id}"]
    assert views[0].repo_tags == []


def test_save_refuses_unknown_and_empty(store):
    with pytest.raises(errors.NotFound):
        store.save(["nothere"], io.BytesIO())
    with pytest.raises(errors.InvalidArgument):
        store.save([], io.BytesIO())


def test_load_moves_an_existing_tag(store, sandbox):  # noqa: F811
    old = store.import_rootfs(write_tar(sandbox / "r.tar", {"a": b"a"}), "busybox:latest")
    archive = legacy_save(sandbox / "legacy.tar", image_config([L0]), [L0], ["busybox:latest"])
    views, messages = store.load(archive)
    assert messages == [
        f"The image busybox:latest already exists, renaming the old one with ID {old.id} to empty string",
        "Loaded image: busybox:latest"]
    assert store.inspect("busybox").id == views[0].id
    assert store.inspect(old.id).repo_tags == []


def test_load_legacy_layout_with_a_symlinked_duplicate_layer(store, sandbox):  # noqa: F811
    config = image_config([L0, L1, L0], created="2023-05-06T07:08:09.123456789Z", Cmd=["/bin/tool"])
    archive = legacy_save(sandbox / "legacy.tar", config, [L0, L1, L0], ["tool:1", "tool:2"],
                          shared_symlink=True)
    views, messages = store.load(archive)
    assert messages == ["Loaded image: tool:1", "Loaded image: tool:2"]
    view = store.inspect("tool:2")
    assert view.id == digest(config) and view.config == config
    assert [layer.diff_id for layer in view.layers] == [digest(L0), digest(L1), digest(L0)]
    assert len({layer.chain_id for layer in view.layers}) == 3
    assert view.created.isoformat() == "2023-05-06T07:08:09.123456+00:00"
    lowers = store.image_layers("tool:1")
    assert len(lowers) == 3 and (lowers[1] / "etc" / "top").read_bytes() == b"top\n"


def _oci_archive(path: Path, entries: list[tuple[dict, bytes]], blobs: list[bytes]) -> Path:
    files = {f"blobs/sha256/{hexof(b)}": b for b in blobs}
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    files["index.json"] = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {**descriptor(data, desc.pop("mediaType")), **desc} for desc, data in entries]}).encode()
    return write_tar(path, files)


def test_load_oci_layout_with_gzip_layers_nested_index_and_attestation(store, sandbox):  # noqa: F811
    gz0, gz1 = gzip.compress(L0), gzip.compress(L1)
    amd_config = image_config([L0, L1], Labels={"arch": "amd64"})
    arm_config = image_config([L0], Labels={"arch": "arm64"})
    amd = oci_manifest(amd_config, [gz0, gz1], LAYER_GZIP)
    arm = oci_manifest(arm_config, [gz0], LAYER_GZIP)
    attestation = oci_manifest(b"{}", [], "application/vnd.in-toto+json")
    inner = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(arm, OCI_MANIFEST, platform={"os": "linux", "architecture": "arm64"}),
        descriptor(amd, OCI_MANIFEST, platform={"os": "linux", "architecture": "amd64"}),
        descriptor(attestation, OCI_MANIFEST, platform={"os": "unknown", "architecture": "unknown"},
                   annotations={"vnd.docker.reference.type": "attestation-manifest"}),
    ]}).encode()
    outer = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(inner, OCI_INDEX)]}).encode()
    single_config = image_config([L1], Labels={"single": "1"})
    single = oci_manifest(single_config, [L1], "application/vnd.oci.image.layer.v1.tar")
    archive = _oci_archive(sandbox / "oci.tar", [
        ({"mediaType": OCI_INDEX, "annotations": {"io.containerd.image.name": "docker.io/library/multi:1",
                                                  "org.opencontainers.image.ref.name": "1"}}, outer),
        ({"mediaType": OCI_MANIFEST, "annotations": {"org.opencontainers.image.ref.name": "single:2"}}, single),
        ({"mediaType": OCI_MANIFEST, "annotations": {"org.opencontainers.image.ref.name": "latest"}}, single),
    ], [gz0, gz1, L1, amd_config, arm_config, single_config, amd, arm, attestation, inner, outer, single])
    views, messages = store.load(archive)
    assert messages == ["Loaded image: multi:1", "Loaded image: single:2"]
    multi = store.inspect("multi:1")
    assert multi.id == digest(amd_config) and multi.labels == {"arch": "amd64"}
    assert [layer.diff_id for layer in multi.layers] == [digest(L0), digest(L1)]
    # Stored uncompressed: the blob digest is the DiffID.
    assert store.blobs.read(multi.layers[1].digest) == L1
    assert store.inspect("single:2").id == digest(single_config)


def test_load_oci_without_a_matching_platform_is_refused(store, sandbox):  # noqa: F811
    config = image_config([L0])
    manifest = oci_manifest(config, [L0], "application/vnd.oci.image.layer.v1.tar")
    index = json.dumps({"schemaVersion": 2, "manifests": [
        descriptor(manifest, OCI_MANIFEST, platform={"os": "linux", "architecture": "s390x"})]}).encode()
    archive = _oci_archive(sandbox / "oci.tar", [({"mediaType": OCI_INDEX}, index)],
                           [L0, config, manifest, index])
    before = _state(store)
    with pytest.raises(errors.InvalidArgument, match="no image for platform linux/amd64"):
        store.load(archive)
    assert _state(store) == before


def _manifest_json(config_path: str, layers: list[str], tags: list[str] | None = None) -> bytes:
    return json.dumps([{"Config": config_path, "RepoTags": tags or ["evil:1"], "Layers": layers}]).encode()


def _hostile_archives(sandbox: Path) -> dict[str, Path]:  # noqa: F811
    config = image_config([L0])
    cfg = f"blobs/sha256/{hexof(config)}"
    layer = f"blobs/sha256/{hexof(L0)}"
    good = {cfg: config, layer: L0}
    bad_layer = layer_tar({"../../escaped": b"x"})
    bad_config = image_config([bad_layer])
    archives = {
        "dotdot member": write_tar(sandbox / "a1", {**good, "../evil": b"x",
                                                     "manifest.json": _manifest_json(cfg, [layer])}),
        "digest-shaped traversal": write_tar(sandbox / "a2", {**good, "manifest.json": _manifest_json(
            cfg, ["blobs/sha256/../../../../etc/passwd"])}),
        "config not sha256 hex": write_tar(sandbox / "a3", {**good, "blobs/sha256/config": config,
                                                             "manifest.json": _manifest_json("blobs/sha256/config", [layer])}),
        "config traversal": write_tar(sandbox / "a4", {**good, "manifest.json": _manifest_json(
            "../" + hexof(config) + ".json", [layer])}),
        "config hash mismatch": write_tar(sandbox / "a5", {layer: L0, f"blobs/sha256/{'0' * 64}": config,
                                                            "manifest.json": _manifest_json(f"blobs/sha256/{'0' * 64}", [layer])}),
        "layer count mismatch": write_tar(sandbox / "a6", {**good, "manifest.json": _manifest_json(cfg, [layer, layer])}),
        "diffid mismatch": write_tar(sandbox / "a7", {
            cfg: config, f"blobs/sha256/{hexof(L1)}": L1,
            "manifest.json": _manifest_json(cfg, [f"blobs/sha256/{hexof(L1)}"])}),
        "blob not matching its name": write_tar(sandbox / "a8", {
            cfg: config, f"{'1' * 64}/layer.tar": L0, layer: L1,
            "manifest.json": _manifest_json(cfg, [layer])}),
        "symlink out of the archive": write_tar(sandbox / "a9", good, symlinks={"manifest.json": "../../etc/passwd"}),
        "not a tar": _raw(sandbox / "a10", b"not a tar at all" * 100),
        "neither manifest nor index": write_tar(sandbox / "a11", good),
        "bad tag": write_tar(sandbox / "a12", {**good, "manifest.json": _manifest_json(cfg, [layer], ["Evil:1"])}),
        "hostile layer content": write_tar(sandbox / "a13", {
            f"blobs/sha256/{hexof(bad_config)}": bad_config, f"blobs/sha256/{hexof(bad_layer)}": bad_layer,
            "manifest.json": _manifest_json(f"blobs/sha256/{hexof(bad_config)}", [f"blobs/sha256/{hexof(bad_layer)}"])}),
        "second image broken": write_tar(sandbox / "a14", {**good, "manifest.json": json.dumps([
            {"Config": cfg, "RepoTags": ["fine:1"], "Layers": [layer]},
            {"Config": cfg, "RepoTags": ["broken:1"], "Layers": []}]).encode()}),
        "oci manifest digest traversal": write_tar(sandbox / "a15", {**good, "index.json": json.dumps(
            {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:../../../etc/passwd",
                                                "size": 1}]}).encode()}),
        "manifest.json not a list": write_tar(sandbox / "a16", {**good, "manifest.json": b'{"Config": 1}'}),
    }
    return archives


def _raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", [
    "dotdot member", "digest-shaped traversal", "config not sha256 hex", "config traversal",
    "config hash mismatch", "layer count mismatch", "diffid mismatch", "blob not matching its name",
    "symlink out of the archive", "not a tar", "neither manifest nor index", "bad tag",
    "hostile layer content", "second image broken", "oci manifest digest traversal",
    "manifest.json not a list",
])
def test_hostile_archives_are_refused_and_store_nothing(store, sandbox, case):  # noqa: F811
    store.import_rootfs(write_tar(sandbox / "r.tar", {"keep": b"k"}), "keep:1")
    before = _state(store)
    archive = _hostile_archives(sandbox)[case]
    with pytest.raises(errors.InvalidArgument):
        store.load(archive)
    assert _state(store) == before
    assert not (sandbox / "escaped").exists() and not (sandbox.parent / "escaped").exists()


def test_load_docker25_layout_with_compressed_layers(store, sandbox):  # noqa: F811
    gz0 = gzip.compress(L0)
    config = image_config([L0])
    archive = write_tar(sandbox / "d25.tar", {
        f"blobs/sha256/{hexof(gz0)}": gz0, f"blobs/sha256/{hexof(config)}": config,
        "manifest.json": json.dumps([{"Config": f"blobs/sha256/{hexof(config)}", "RepoTags": ["z:1"],
                                      "Layers": [f"blobs/sha256/{hexof(gz0)}"]}]).encode(),
        "index.json": b'{"schemaVersion":2,"manifests":[]}', "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
    })
    assert store.load(archive)[1] == ["Loaded image: z:1"]
    view = store.inspect("z:1")
    assert view.layers[0].digest == digest(L0) and store.blobs.read(digest(L0)) == L0
    assert not store.blobs.has(digest(gz0))
