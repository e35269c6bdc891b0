"""Image commands of the installed `kran`, against a real controller and agent."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import pytest

HEX64 = re.compile(r"^sha256:[0-9a-f]{64}$")
SHORT_ID = re.compile(r"^[0-9a-f]{12}$")
SIZE = re.compile(r"^\d+(\.\d+)?(B|kB|MB|GB)$")


def import_image(cluster, tarball: Path, ref: str | None = None, *changes: str) -> str:
    """Import tarball (as ref, with Dockerfile changes) and return the new image id."""
    args = ["import", str(tarball)] + ([ref] if ref else [])
    for change in changes:
        args += ["-c", change]
    image_id = cluster.ok(*args).strip()
    assert HEX64.match(image_id), image_id
    return image_id


def inspect(cluster, ref: str) -> dict:
    """`kran image inspect REF` as one JSON object."""
    data = json.loads(cluster.ok("image", "inspect", ref))
    assert isinstance(data, list) and len(data) == 1
    return data[0]


def all_ids(cluster) -> list[tuple[str, ...]]:
    """Every image id, reference and digest, for checking that nothing changed."""
    _, rows = cluster.table("images", "-a", "--no-trunc", "--digests")
    return sorted((r["REPOSITORY"], r["TAG"], r["DIGEST"], r["IMAGE ID"]) for r in rows)


@pytest.fixture
def busybox(cluster, busybox_tar) -> str:
    """busybox:latest, imported with CMD ["sh"] unless already there; its id."""
    result = cluster.kran("image", "inspect", "busybox:latest")
    if result.code == 0:
        return json.loads(result.out)[0]["Id"]
    return import_image(cluster, busybox_tar, "busybox:latest", 'CMD ["sh"]')


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer tarball holding files (name -> content, mode 0755)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o755, 0
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def image_config(diff_id: str, cmd: list[str]) -> bytes:
    """An OCI image config with one layer."""
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": cmd, "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "made by the test"}],
    }, sort_keys=True).encode()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add a regular file name holding data to tar."""
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def sha256(data: bytes) -> str:
    """The OCI digest of data."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def docker_save_archive(path: Path, repo_tag: str, layer: bytes, cmd: list[str]) -> str:
    """Write a docker-save tarball (manifest.json, config, layer dir) to path; the image id."""
    config = image_config(sha256(layer), cmd)
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_dir = hashlib.sha256(layer).hexdigest()
    manifest = [{"Config": config_name, "RepoTags": [repo_tag], "Layers": [f"{layer_dir}/layer.tar"]}]
    repo, tag = repo_tag.rsplit(":", 1)
    with tarfile.open(path, "w") as tar:
        add_bytes(tar, config_name, config)
        add_bytes(tar, f"{layer_dir}/VERSION", b"1.0")
        add_bytes(tar, f"{layer_dir}/layer.tar", layer)
        add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
        add_bytes(tar, "repositories", json.dumps({repo: {tag: layer_dir}}).encode())
    return sha256(config)


def oci_layout_archive(path: Path, name: str, layer: bytes, cmd: list[str]) -> str:
    """Write a tarred OCI image layout with a gzip-compressed layer to path; the image id."""
    compressed = gzip.compress(layer, mtime=0)
    config = image_config(sha256(layer), cmd)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(compressed), "size": len(compressed)}],
    }).encode()
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(manifest), "size": len(manifest),
            "annotations": {"io.containerd.image.name": f"docker.io/library/{name}",
                            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
        }],
    }).encode()
    with tarfile.open(path, "w") as tar:
        add_bytes(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add_bytes(tar, "index.json", index)
        for blob in (config, manifest, compressed):
            add_bytes(tar, "blobs/sha256/" + hashlib.sha256(blob).hexdigest(), blob)
    return sha256(config)


# --- import, list, inspect -------------------------------------------------

def test_import_with_cmd_then_inspect(cluster, busybox_tar):
    image_id = import_image(cluster, busybox_tar, "imported:1.0", 'CMD ["sh"]')
    detail = inspect(cluster, "imported:1.0")
    assert detail["Id"] == image_id
    assert detail["RepoTags"] == ["imported:1.0"]
    assert detail["Config"]["Cmd"] == ["sh"]
    assert detail["RootFS"]["Type"] == "layers"
    assert len(detail["RootFS"]["Layers"]) == 1 and HEX64.match(detail["RootFS"]["Layers"][0])
    assert detail["Os"] == "linux"
    cluster.ok("rmi", "imported:1.0")


def test_import_from_stdin(cluster, hello_tar):
    result = cluster.kran("import", "-", "fromstdin:latest", "-c", 'CMD ["/hello"]',
                          stdin=hello_tar.read_bytes())
    assert result.code == 0, result.err
    assert inspect(cluster, "fromstdin")["Config"]["Cmd"] == ["/hello"]
    cluster.ok("rmi", "fromstdin")


def test_images_columns(cluster, busybox):
    header, rows = cluster.table("images")
    assert header == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    row = next(r for r in rows if r["REPOSITORY"] == "busybox")
    assert row["TAG"] == "latest"
    assert row["IMAGE ID"] == busybox.removeprefix("sha256:")[:12]
    assert re.search(r"ago$", row["CREATED"]), row
    assert SIZE.match(row["SIZE"]), row
    # `kran image ls` is the same command.
    without_created = [{k: v for k, v in r.items() if k != "CREATED"} for r in rows]
    assert [{k: v for k, v in r.items() if k != "CREATED"}
            for r in cluster.table("image", "ls")[1]] == without_created


def test_images_quiet_and_no_trunc(cluster, busybox):
    quiet = cluster.ok("images", "-q").split()
    assert quiet and all(SHORT_ID.match(line) for line in quiet)
    assert busybox.removeprefix("sha256:")[:12] in quiet

    header, rows = cluster.table("images", "--no-trunc")
    assert busybox in [r["IMAGE ID"] for r in rows]
    assert cluster.ok("images", "-q", "--no-trunc").split().count(busybox) == 1


def test_images_digests_and_all(cluster, busybox):
    header, rows = cluster.table("images", "--digests")
    assert header == ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    row = next(r for r in rows if r["REPOSITORY"] == "busybox")
    assert HEX64.match(row["DIGEST"]), row

    header, rows = cluster.table("images", "-a")
    assert header == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    assert any(r["REPOSITORY"] == "busybox" for r in rows)


def test_images_repository_filter(cluster, busybox, hello_tar):
    import_image(cluster, hello_tar, "hello-world:latest", 'CMD ["/hello"]')
    _, rows = cluster.table("images", "busybox")
    assert [r["REPOSITORY"] for r in rows] == ["busybox"]
    _, rows = cluster.table("images", "hello-world:latest")
    assert [(r["REPOSITORY"], r["TAG"]) for r in rows] == [("hello-world", "latest")]
    _, rows = cluster.table("images", "no-such-repo")
    assert rows == []
    cluster.ok("rmi", "hello-world")


def test_node_option_and_filters(cluster, busybox, hello_tar):
    header, rows = cluster.table("images", "--node", cluster.hostname)
    assert "NODE" not in header                      # one node: no NODE column
    assert busybox.removeprefix("sha256:")[:12] in [r["IMAGE ID"] for r in rows]
    result = cluster.kran("images", "--node", "no-such-node")
    assert result.code == 1 and "no-such-node" in result.err

    dangling = cluster.ok("import", "--node", cluster.hostname, str(hello_tar)).strip()
    assert HEX64.match(dangling), dangling
    quiet = cluster.ok("images", "-q", "--no-trunc", "-f", "dangling=true").split()
    assert quiet == [dangling]
    assert dangling not in cluster.ok("images", "-q", "--no-trunc", "-f", "dangling=false").split()
    _, rows = cluster.table("images", "-f", "reference=busy*")
    assert [r["REPOSITORY"] for r in rows] == ["busybox"]
    cluster.ok("rmi", dangling)


def test_tag_and_id_prefix(cluster, busybox):
    cluster.ok("tag", "busybox", "registry.example.com:5000/team/box:v1")
    detail = inspect(cluster, "registry.example.com:5000/team/box:v1")
    assert detail["Id"] == busybox
    assert "registry.example.com:5000/team/box:v1" in detail["RepoTags"]

    hex_id = busybox.removeprefix("sha256:")
    for key in (busybox, hex_id, hex_id[:12], hex_id[:5], "sha256:" + hex_id[:8]):
        assert inspect(cluster, key)["Id"] == busybox, key
    cluster.ok("rmi", "registry.example.com:5000/team/box:v1")


def test_history(cluster, busybox):
    header, rows = cluster.table("history", "busybox")
    assert header == ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    assert len(rows) == 1
    assert rows[0]["IMAGE"] == busybox.removeprefix("sha256:")[:12]
    assert cluster.ok("history", "-q", "busybox").split() == [busybox.removeprefix("sha256:")[:12]]


# --- save, load ------------------------------------------------------------

def test_save_rmi_load_round_trip(cluster, hello_tar, tmp_path):
    image_id = import_image(cluster, hello_tar, "roundtrip:1", 'CMD ["/hello"]')
    saved = tmp_path / "roundtrip.tar"
    cluster.ok("save", "-o", str(saved), "roundtrip:1")
    with tarfile.open(saved) as tar:
        names = tar.getnames()
        assert "manifest.json" in names and "index.json" in names and "oci-layout" in names
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["roundtrip:1"]

    out = cluster.ok("rmi", "roundtrip:1")
    assert "Untagged: roundtrip:1" in out and f"Deleted: {image_id}" in out
    assert cluster.kran("image", "inspect", "roundtrip:1").code == 1

    out = cluster.ok("load", "-i", str(saved))
    assert "Loaded image: roundtrip:1" in out
    assert inspect(cluster, "roundtrip:1")["Id"] == image_id

    # Without -o and -i: to stdout and from stdin.
    streamed = cluster.kran("save", "roundtrip:1")
    assert streamed.code == 0, streamed.err
    cluster.ok("rmi", "roundtrip:1")
    out = cluster.ok("load", stdin=streamed.out_bytes)
    assert "Loaded image: roundtrip:1" in out
    assert inspect(cluster, "roundtrip:1")["Id"] == image_id
    cluster.ok("rmi", "roundtrip:1")


def test_load_docker_save_made_by_hand(cluster, tmp_path):
    archive = tmp_path / "docker-save.tar"
    image_id = docker_save_archive(archive, "handmade:v2", layer_tar({"bin/tool": b"#!/bin/sh\n"}),
                                   ["/bin/tool"])
    out = cluster.ok("load", "-i", str(archive))
    assert "Loaded image: handmade:v2" in out
    detail = inspect(cluster, "handmade:v2")
    assert detail["Id"] == image_id
    assert detail["Config"]["Cmd"] == ["/bin/tool"]
    cluster.ok("rmi", "handmade:v2")


def test_load_oci_layout(cluster, tmp_path):
    archive = tmp_path / "oci.tar"
    layer = layer_tar({"app/run": b"run\n", "app/data": b"x" * 4096})
    image_id = oci_layout_archive(archive, "ocimade:3.1", layer, ["/app/run"])
    out = cluster.ok("load", "-i", str(archive))
    assert "ocimade:3.1" in out
    detail = inspect(cluster, "ocimade:3.1")
    assert detail["Id"] == image_id
    # Layers are stored uncompressed: the layer's diff id is the uncompressed digest.
    assert detail["RootFS"]["Layers"] == [sha256(layer)]
    cluster.ok("rmi", "ocimade:3.1")


def test_save_of_two_images_loads_both(cluster, busybox, hello_tar, tmp_path):
    hello_id = import_image(cluster, hello_tar, "pair-hello:1", 'CMD ["/hello"]')
    saved = tmp_path / "pair.tar"
    cluster.ok("save", "-o", str(saved), "busybox:latest", "pair-hello:1")
    cluster.ok("rmi", "pair-hello:1")
    out = cluster.ok("load", "-i", str(saved))
    assert "Loaded image: pair-hello:1" in out and "Loaded image: busybox:latest" in out
    assert inspect(cluster, "pair-hello:1")["Id"] == hello_id
    assert inspect(cluster, "busybox:latest")["Id"] == busybox
    cluster.ok("rmi", "pair-hello:1")


# --- rmi and prune ---------------------------------------------------------

def test_rmi_untags_before_it_deletes(cluster, hello_tar):
    image_id = import_image(cluster, hello_tar, "twotags:a", 'CMD ["/hello"]')
    cluster.ok("tag", "twotags:a", "twotags:b")

    out = cluster.ok("rmi", "twotags:a")
    assert out.split("\n")[0] == "Untagged: twotags:a" and "Deleted" not in out
    assert inspect(cluster, image_id)["RepoTags"] == ["twotags:b"]

    out = cluster.ok("rmi", "twotags:b")
    assert "Untagged: twotags:b" in out and f"Deleted: {image_id}" in out
    result = cluster.kran("image", "inspect", image_id)
    assert result.code == 1 and "No such image" in result.err


def test_rmi_by_id_with_two_tags_needs_force(cluster, hello_tar):
    image_id = import_image(cluster, hello_tar, "forced:a", 'CMD ["/hello"]')
    cluster.ok("tag", "forced:a", "forced:b")
    short = image_id.removeprefix("sha256:")[:12]

    result = cluster.kran("rmi", short)
    assert result.code == 1
    assert "must be forced" in result.err and "\n" not in result.err.strip(), result.err
    assert sorted(inspect(cluster, image_id)["RepoTags"]) == ["forced:a", "forced:b"]

    out = cluster.ok("rmi", "-f", short)
    assert "Untagged: forced:a" in out and "Untagged: forced:b" in out
    assert f"Deleted: {image_id}" in out
    assert cluster.kran("image", "inspect", image_id).code == 1


def test_image_prune(cluster, busybox, hello_tar):
    dangling = import_image(cluster, hello_tar)          # no reference: <none>:<none>
    _, rows = cluster.table("images")
    assert {"REPOSITORY": "<none>", "TAG": "<none>"}.items() <= next(
        r for r in rows if r["IMAGE ID"] == dangling.removeprefix("sha256:")[:12]).items()

    out = cluster.ok("image", "prune", "-f")
    assert out.startswith("Deleted Images:\n")
    assert f"deleted: {dangling}" in out and "Total reclaimed space:" in out
    assert cluster.kran("image", "inspect", dangling).code == 1
    assert inspect(cluster, "busybox")["Id"] == busybox     # tagged images stay

    # -a removes every image no container uses: here, all of them.
    out = cluster.ok("image", "prune", "-a", "-f")
    assert f"deleted: {busybox}" in out and "untagged: busybox:latest" in out
    assert cluster.ok("images", "-q") == ""


# --- bad input -------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["tag", "busybox", "Upper/Case:tag"],
    ["tag", "busybox", "name:bad tag"],
    ["image", "inspect", "busybox:"],
    ["rmi", "a//b"],
    ["import", "{tarball}", "Bad_Name:x"],
])
def test_invalid_reference(cluster, busybox, busybox_tar, args):
    before = all_ids(cluster)
    args = [a.replace("{tarball}", str(busybox_tar)) for a in args]
    result = cluster.kran(*args)
    assert result.code == 1
    assert "invalid reference format" in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert all_ids(cluster) == before


@pytest.mark.parametrize("args", [
    ["image", "inspect", "nosuch:1"],
    ["rmi", "nosuch"],
    ["tag", "nosuch:1", "other:1"],
    ["history", "nosuch"],
    ["save", "-o", "{tmp}/x.tar", "nosuch"],
    ["image", "inspect", "0123456789ab"],
])
def test_unknown_image(cluster, busybox, tmp_path, args):
    before = all_ids(cluster)
    result = cluster.kran(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.code == 1
    assert "No such image" in result.err
    assert not (tmp_path / "x.tar").exists()
    assert all_ids(cluster) == before


def tar_with(name: str) -> bytes:
    """A tarball with one harmless member and one named name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        add_bytes(tar, "ok.txt", b"fine\n")
        add_bytes(tar, name, b"owned\n")
    return buf.getvalue()


GARBAGE = b"this is not a tarball\n" * 100


@pytest.mark.parametrize("content", [
    pytest.param(GARBAGE, id="garbage"),
    pytest.param(tar_with("../../escaped.txt"), id="dotdot"),
    pytest.param(tar_with("/etc/kran-escaped"), id="absolute"),
])
def test_import_malformed_archive(cluster, busybox, tmp_path, content):
    archive = tmp_path / "bad.tar"
    archive.write_bytes(content)
    before = all_ids(cluster)
    result = cluster.kran("import", str(archive), "malformed:1")
    assert result.code == 1, result.out
    assert result.err.startswith("Error"), result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert all_ids(cluster) == before
    assert not Path("/etc/kran-escaped").exists()


@pytest.mark.parametrize("layer", [
    pytest.param(None, id="garbage"),
    pytest.param(GARBAGE, id="garbage-layer"),
    pytest.param(tar_with("../../escaped.txt"), id="dotdot-layer"),
    pytest.param(tar_with("/etc/kran-escaped"), id="absolute-layer"),
])
def test_load_malformed_archive(cluster, busybox, tmp_path, layer):
    archive = tmp_path / "bad.tar"
    if layer is None:
        archive.write_bytes(GARBAGE)
    else:
        docker_save_archive(archive, "malformed:1", layer, ["sh"])
    before = all_ids(cluster)
    result = cluster.kran("load", "-i", str(archive))
    assert result.code == 1, result.out
    assert result.err.startswith("Error"), result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert all_ids(cluster) == before
    assert not Path("/etc/kran-escaped").exists()


def test_missing_file(cluster, tmp_path):
    result = cluster.kran("import", str(tmp_path / "absent.tar"), "absent:1")
    assert result.code == 1 and "absent.tar" in result.err
    result = cluster.kran("load", "-i", str(tmp_path / "absent.tar"))
    assert result.code == 1 and "absent.tar" in result.err


def test_unreachable_controller(cluster):
    for args in (["images"], ["image", "inspect", "busybox"], ["version"]):
        result = cluster.kran("-H", "127.0.0.1:1", *args)
        assert result.code == 1
        assert "127.0.0.1:1" in result.err
        assert len(result.err.strip().splitlines()) == 1, result.err
