"""Build rootfs tarballs, image configs and image archives for the image store tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "ls", "echo", "cat")


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hexof(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def busybox_rootfs(path: Path) -> Path:
    """A rootfs tarball: Debian's static busybox at bin/busybox and a few applet symlinks."""
    with tarfile.open(path, "w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
    return path


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer tar holding regular files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def image_config(layers: list[bytes], created: str = "2024-01-02T03:04:05Z", **config: object) -> bytes:
    """An image config whose rootfs lists the DiffIDs of `layers` (uncompressed tars)."""
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": created, "config": config,
        "rootfs": {"type": "layers", "diff_ids": [digest(layer) for layer in layers]},
        "history": [{"created": created, "created_by": "test"} for _ in layers],
    }).encode()


def write_tar(path: Path, files: dict[str, bytes], symlinks: dict[str, str] | None = None,
              compress: bool = False) -> Path:
    """A tar of `files` (and `symlinks` name -> target), optionally gzipped."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    data = buffer.getvalue()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def legacy_save(path: Path, config: bytes, layers: list[bytes], repo_tags: list[str],
                shared_symlink: bool = False) -> Path:
    """A docker save archive in the legacy v1.2 layout: <id>/layer.tar, <config hex>.json, manifest.json.

    With `shared_symlink`, the last layer's layer.tar is a symlink to the
    first one's, as old docker save wrote duplicate layers.
    """
    files: dict[str, bytes] = {}
    symlinks: dict[str, str] = {}
    layer_paths = []
    for n, layer in enumerate(layers):
        layer_id = hashlib.sha256(f"v1-{n}".encode()).hexdigest()
        layer_paths.append(f"{layer_id}/layer.tar")
        files[f"{layer_id}/VERSION"] = b"1.0"
        files[f"{layer_id}/json"] = json.dumps({"id": layer_id}).encode()
        if shared_symlink and n == len(layers) - 1 and n > 0:
            symlinks[f"{layer_id}/layer.tar"] = f"../{layer_paths[0]}"
        else:
            files[f"{layer_id}/layer.tar"] = layer
    files[f"{hexof(config)}.json"] = config
    files["manifest.json"] = json.dumps(
        [{"Config": f"{hexof(config)}.json", "RepoTags": repo_tags, "Layers": layer_paths}]).encode()
    files["repositories"] = b"{}"
    return write_tar(path, files, symlinks)


def oci_manifest(config: bytes, blobs: list[bytes], layer_type: str) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": digest(b), "size": len(b)} for b in blobs],
    }).encode()


def descriptor(data: bytes, media_type: str, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digest(data), "size": len(data), **extra}
