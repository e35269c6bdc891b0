"""What the image store answers: image and layer views, and the helpers that filter them."""

from __future__ import annotations

import fnmatch
import platform as host_platform
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from kran import hostinfo

_TIME_RE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def node_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) of this node, as OCI and Docker name them."""
    machine = host_platform.machine().lower()
    variant = machine[3:5] if machine.startswith(("armv6", "armv7")) else ""
    return hostinfo.goos(), hostinfo.goarch(), variant


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with up to nanosecond digits (as Go writes it); the epoch if unreadable."""
    match = _TIME_RE.fullmatch(text or "")
    if match is None:
        return datetime.fromtimestamp(0, timezone.utc)
    base, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(base + (zone if zone != "Z" else "+00:00"))
    return stamp.replace(microsecond=int((fraction or "0")[:6].ljust(6, "0")))


@dataclass(frozen=True)
class LayerView:
    """One layer of an image, as Inspect reports it."""

    diff_id: str
    digest: str
    media_type: str
    size: int
    chain_id: str


@dataclass(frozen=True)
class ImageView:
    """An image as List and Inspect report it; references in familiar form."""

    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    created: datetime
    size: int
    labels: dict[str, str]
    config: bytes
    manifest: bytes
    manifest_digest: str
    layers: list[LayerView] = field(default_factory=list)


Removed = tuple[str, str]
"""("untagged", "busybox:latest") or ("deleted", "sha256:...") as docker rmi prints them."""


def has_label(labels: dict[str, str], wanted: str) -> bool:
    """Docker's label filter: "K" (present) or "K=V"."""
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


def ref_matches(familiar: str, pattern: str) -> bool:
    """Docker's reference filter: a glob on "name:tag" or on the name alone."""
    name = familiar.rsplit(":", 1)[0] if ":" in familiar.rsplit("/", 1)[-1] else familiar
    return fnmatch.fnmatchcase(familiar, pattern) or fnmatch.fnmatchcase(name, pattern)
