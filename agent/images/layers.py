"""Unpacked layers, keyed by chain id, each stored once and shared by every image.

Layout under the store's root:

    <chain-id hex>/diff/       the layer's own files: an overlayfs upper dir over
                               its parents, and a lower dir for its children
    <chain-id hex>/layer.json  chain_id, diff_id, parent, size
    .tmp-*/                    layers being unpacked or removed
    .mnt-*/                    overlay mounts used while unpacking

A layer is unpacked in a .tmp dir and renamed into place with its layer.json
already written, so a layer directory that exists is complete. The first
layer is extracted straight into its diff dir; a later one is extracted into
an overlay mount of its parents with the new diff dir as upper dir, so lower
symlinks (`lib -> usr/lib`) are followed inside the root and deletions become
overlay whiteouts written by the kernel.

Overlays are mounted with agent.linux.mount_overlay (the new mount API, so no
limit on the number of layers from mount(2)'s one-page option string).
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from hashlib import sha256
from pathlib import Path

from agent.images.extract import extract_layer
from agent.linux import mount_overlay, mounts_below, syncfs, unmount
from kran import errors

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_HEX = re.compile(r"^[a-f0-9]{64}$")
_TMP_PREFIX = ".tmp-"
_MNT_PREFIX = ".mnt-"

def chain_id(parent: str | None, diff_id: str) -> str:
    """The chain id of a layer: its diff id for a base layer, else sha256("<parent> <diff_id>")."""
    if parent is None:
        return diff_id
    return "sha256:" + sha256(f"{parent} {diff_id}".encode()).hexdigest()


@dataclass(frozen=True)
class LayerInfo:
    """One unpacked layer. `parent` is the parent's chain id; `size` counts regular-file bytes."""

    chain_id: str
    diff_id: str
    parent: str | None
    size: int


def _check_digest(kind: str, value: str) -> None:
    if not _DIGEST.match(value):
        raise errors.InvalidArgument(f"invalid {kind} {value!r}: expected sha256:<64 hex digits>")


class LayerStore:
    """The unpacked layers of one node, under `root`."""

    def __init__(self, root: Path) -> None:
        """Open (creating) the store and clean up after a crash: stale mounts, unfinished dirs."""
        Path(root).mkdir(parents=True, exist_ok=True)
        # Resolved, because /proc/self/mountinfo names mount points by their real path.
        self.root = Path(root).resolve()
        for point in mounts_below(self.root):
            unmount(point)
        for entry in self.root.iterdir():
            if entry.name.startswith((_TMP_PREFIX, _MNT_PREFIX)):
                shutil.rmtree(entry)

    def _layer_dir(self, chain_id: str) -> Path:
        _check_digest("chain id", chain_id)
        return self.root / chain_id.removeprefix("sha256:")

    def has(self, chain_id: str) -> bool:
        """Whether the layer `chain_id` is unpacked (errors.InvalidArgument if it is no sha256 digest)."""
        return (self._layer_dir(chain_id) / "layer.json").is_file()

    def get(self, chain_id: str) -> LayerInfo:
        """The layer `chain_id`; errors.NotFound if it is not unpacked."""
        try:
            data = json.loads((self._layer_dir(chain_id) / "layer.json").read_text())
        except FileNotFoundError:
            raise errors.NotFound(f"layer {chain_id} not found") from None
        return LayerInfo(**data)

    def list(self) -> list[LayerInfo]:
        """Every unpacked layer, by chain id."""
        return [self.get("sha256:" + p.name) for p in sorted(self.root.iterdir())
                if _HEX.match(p.name) and (p / "layer.json").is_file()]

    def diff_dir(self, chain_id: str) -> Path:
        """The layer's own directory, for use as an overlay upper or lower dir."""
        path = self._layer_dir(chain_id) / "diff"
        if not path.is_dir():
            raise errors.NotFound(f"layer {chain_id} not found")
        return path

    def lowers(self, chain_id: str) -> list[Path]:
        """The diff dirs of the chain ending at `chain_id`, top first (overlay lowerdir order)."""
        dirs = []
        current: str | None = chain_id
        while current is not None:
            dirs.append(self.diff_dir(current))
            current = self.get(current).parent
        return dirs

    def apply(self, parent: str | None, diff_id: str, tar_path: Path) -> LayerInfo:
        """Unpack the uncompressed layer tar `tar_path` on top of `parent`; idempotent.

        Returns the existing layer if the chain is already unpacked. A refused
        archive raises errors.InvalidArgument and leaves nothing behind.
        """
        _check_digest("diff id", diff_id)
        if parent is not None and not self.has(parent):
            raise errors.NotFound(f"parent layer {parent} not found")
        cid = chain_id(parent, diff_id)
        if self.has(cid):
            return self.get(cid)
        staging = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=self.root))
        try:
            layer = staging / "layer"
            diff = layer / "diff"
            diff.mkdir(parents=True)
            diff.chmod(0o755)
            if parent is None:
                size = extract_layer(tar_path, diff)
            else:
                size = self._extract_over(parent, tar_path, diff, staging / "work")
            info = LayerInfo(chain_id=cid, diff_id=diff_id, parent=parent, size=size)
            (layer / "layer.json").write_text(json.dumps(asdict(info)))
            syncfs(staging)
            try:
                layer.rename(self._layer_dir(cid))
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                return self.get(cid)  # unpacked meanwhile by a concurrent apply
            return info
        finally:
            shutil.rmtree(staging)

    def _extract_over(self, parent: str, tar_path: Path, upper: Path, work: Path) -> int:
        """Extract into an overlay of the parent chain, with `upper` collecting this layer."""
        work.mkdir()
        mountpoint = Path(tempfile.mkdtemp(prefix=_MNT_PREFIX, dir=self.root))
        try:
            mount_overlay(mountpoint, self.lowers(parent), upper, work)
            try:
                return extract_layer(tar_path, mountpoint)
            finally:
                unmount(mountpoint)
        finally:
            mountpoint.rmdir()

    def remove(self, chain_id: str) -> None:
        """Delete this one layer; the caller guarantees no image or layer still uses it."""
        path = self._layer_dir(chain_id)
        if not path.is_dir():
            raise errors.NotFound(f"layer {chain_id} not found")
        # Renamed out of the way first, so a crash half way leaves a .tmp dir, not a broken layer.
        doomed = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=self.root))
        path.rename(doomed / "layer")
        shutil.rmtree(doomed)
