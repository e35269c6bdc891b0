"""The bench's image, made locally: busybox plus layers of random data and of text.

The same seed gives the same bytes, so every run (and every machine) pulls
and pushes the same image: busybox's rootfs tarball (out/images/busybox.tar)
as the base layer, four layers of incompressible random data of different
sizes (one of them as many small files, which costs extraction more than
a few big ones) and one of log-like text that gzip shrinks several times.
The result is a docker-save archive that both `docker load` and
`kran load` read.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

MTIME = 1_700_000_000
_MIB = 1 << 20


@dataclass(frozen=True)
class LayerSpec:
    """What one layer holds: `files` files of `size` bytes each, random or text."""

    directory: str
    files: int
    size: int
    text: bool = False

    @property
    def total(self) -> int:
        """Bytes of file content in the layer."""
        return self.files * self.size


LAYERS = (
    LayerSpec("data/a", 1, 72 * _MIB),
    LayerSpec("data/b", 3, 16 * _MIB),
    LayerSpec("data/c", 4, 8 * _MIB),
    LayerSpec("data/small", 2048, 8 << 10),
    LayerSpec("data/logs", 5, 8 * _MIB, text=True),
)


def _text(rng: random.Random, size: int) -> bytes:
    """Log-like lines: timestamps, levels, ids and paths, compressible as real logs are."""
    levels = ("INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR")
    paths = ("/api/v1/items", "/api/v1/users", "/healthz", "/api/v1/orders", "/static/app.js")
    out = io.StringIO()
    written = 0
    while written < size:
        line = (f"2024-01-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
                f"{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z {rng.choice(levels)} "
                f"worker-{rng.randint(1, 16)} request id={rng.getrandbits(32):08x} "
                f"path={rng.choice(paths)}/{rng.randint(1, 99999)} status={rng.choice((200, 200, 200, 404, 500))} "
                f"bytes={rng.randint(0, 65535)} took={rng.random() * 100:.3f}ms\n")
        out.write(line)
        written += len(line)
    return out.getvalue().encode()[:size]


def _write_layer(spec: LayerSpec, rng: random.Random, path: Path) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        parts = spec.directory.split("/")
        for depth in range(1, len(parts) + 1):
            info = tarfile.TarInfo("/".join(parts[:depth]))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
            tar.addfile(info)
        for index in range(spec.files):
            data = _text(rng, spec.size) if spec.text else rng.randbytes(spec.size)
            info = tarfile.TarInfo(f"{spec.directory}/{index:05d}.{'log' if spec.text else 'bin'}")
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            tar.addfile(info, io.BytesIO(data))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(4 * _MIB):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def make_archive(busybox_tar: Path, workdir: Path, tag: str, seed: int = 7) -> tuple[Path, int]:
    """Write the image as a docker-save archive tagged `tag` under `workdir`; (its path, uncompressed bytes)."""
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    layers = [busybox_tar]
    for number, spec in enumerate(LAYERS, start=1):
        path = workdir / f"layer-{number}.tar"
        _write_layer(spec, rng, path)
        layers.append(path)
    diff_ids = [_sha256_file(path) for path in layers]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"bench layer {i}"}
                    for i in range(len(layers))],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    names = [f"{d.removeprefix('sha256:')}/layer.tar" for d in diff_ids]
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": names}]).encode()
    archive = workdir / "image.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), MTIME
            tar.addfile(info, io.BytesIO(data))
        for name, path in zip(names, layers):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = path.stat().st_size, MTIME
            with open(path, "rb") as source:
                tar.addfile(info, source)
    size = sum(path.stat().st_size for path in layers)
    for path in layers[1:]:
        path.unlink()
    return archive, size
