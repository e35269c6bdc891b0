"""Docker-shaped views of kran images: summary, inspect and history.

Everything here is rendered from the public messages (`Image`, `ImageDetail`)
alone, so the SDK, the CLI and a Docker Engine API server give the same
answer. The shapes follow Docker Engine API 1.50: `GET /images/json`
(summary), `GET /images/{name}/json` (inspect) and
`GET /images/{name}/history` (history).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from kran.api.v1 import images_pb2

MISSING_ID = "<missing>"

# RFC 3339 with up to nanosecond fractions, as Go writes and reads it.
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)
# Go's zero time, which Docker prints for times it does not know.
ZERO_TIME = "0001-01-01T00:00:00Z"


def _format_rfc3339nano(dt: datetime, nanos: int) -> str:
    """Go's time.RFC3339Nano: trailing zeros of the fraction dropped, Z for UTC."""
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    offset = dt.utcoffset() or timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def parse_rfc3339(value: str) -> tuple[datetime, int] | None:
    """Parse an RFC 3339 time into (aware datetime without fraction, nanoseconds).

    Returns None when value is not RFC 3339, as found in hand-made configs.
    """
    match = _RFC3339.match(value.strip()) if value else None
    if not match:
        return None
    year, month, day, hour, minute, second, frac, zone = match.groups()
    if zone in ("Z", "z"):
        tz = timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                      tzinfo=tz)
    except ValueError:
        return None
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    return dt, nanos


def rfc3339nano(value: str) -> str:
    """Normalise an RFC 3339 time string the way Go re-renders it (RFC3339Nano).

    A value that does not parse is returned unchanged.
    """
    parsed = parse_rfc3339(value)
    if parsed is None:
        return value
    return _format_rfc3339nano(*parsed)


def timestamp_rfc3339nano(ts: Timestamp) -> str:
    """A protobuf Timestamp as RFC3339Nano in UTC; the zero time if unset."""
    if not ts.seconds and not ts.nanos:
        return ZERO_TIME
    dt = datetime.fromtimestamp(ts.seconds, tz=timezone.utc)
    return _format_rfc3339nano(dt, ts.nanos)


def unix_seconds(value: str) -> int:
    """Seconds since the epoch of an RFC 3339 time; 0 when it does not parse."""
    parsed = parse_rfc3339(value)
    return int(parsed[0].timestamp()) if parsed else 0


def _load_json(data: bytes) -> dict[str, Any]:
    if not data:
        return {}
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def summary(image: images_pb2.Image) -> dict[str, Any]:
    """The `GET /images/json` entry for an image (`Created` in unix seconds)."""
    return {
        "Containers": -1,
        "Created": image.created.seconds,
        "Id": image.id,
        "Labels": dict(image.labels) or None,
        "ParentId": image.parent,
        "RepoDigests": list(image.repo_digests),
        "RepoTags": list(image.repo_tags),
        "SharedSize": -1,
        "Size": image.size,
    }


def inspect(detail: images_pb2.ImageDetail) -> dict[str, Any]:
    """The `docker image inspect` document for an image, from its stored OCI documents."""
    image = detail.image
    config = _load_json(detail.config)
    manifest = _load_json(detail.manifest)
    history = config.get("history") or []
    comment = config.get("comment")
    if comment is None and history and isinstance(history[-1], dict):
        comment = history[-1].get("comment", "")
    created = config.get("created")
    created = rfc3339nano(created) if isinstance(created, str) else \
        timestamp_rfc3339nano(image.created)
    rootfs = config.get("rootfs") or {}
    layers = rootfs.get("diff_ids") or [layer.diff_id for layer in detail.layers]
    doc: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": image.parent,
        "Comment": comment or "",
        "Created": created,
    }
    if config.get("docker_version"):
        doc["DockerVersion"] = config["docker_version"]
    doc.update({
        "Author": config.get("author", ""),
        "Config": config.get("config") or {},
        "Architecture": config.get("architecture", ""),
    })
    if config.get("variant"):
        doc["Variant"] = config["variant"]
    doc["Os"] = config.get("os", "")
    if config.get("os.version"):
        doc["OsVersion"] = config["os.version"]
    doc.update({
        "Size": image.size,
        "GraphDriver": {"Data": None, "Name": "overlayfs"},
        "RootFS": {"Type": rootfs.get("type", "layers"), "Layers": list(layers)},
        "Metadata": {"LastTagTime": ZERO_TIME},
    })
    if detail.manifest_digest:
        doc["Descriptor"] = {
            "mediaType": manifest.get("mediaType", "application/vnd.oci.image.manifest.v1+json"),
            "digest": detail.manifest_digest,
            "size": len(detail.manifest),
        }
    return doc


def history(detail: images_pb2.ImageDetail) -> list[dict[str, Any]]:
    """The `GET /images/{name}/history` entries for an image, newest first.

    As Docker does, the newest entry carries the image id and tags and the
    older ones `<missing>`, since their intermediate images are not stored.
    A config without history gets one entry per layer.
    """
    config = _load_json(detail.config)
    entries = [h for h in (config.get("history") or []) if isinstance(h, dict)]
    layer_sizes = [layer.size for layer in detail.layers]
    if not entries:
        entries = [{"created": config.get("created", "")} for _ in layer_sizes] or \
            [{"created": config.get("created", "")}]
    items: list[dict[str, Any]] = []
    layer_index = 0
    for entry in entries:
        size = 0
        if not entry.get("empty_layer"):
            if layer_index < len(layer_sizes):
                size = layer_sizes[layer_index]
            layer_index += 1
        created = entry.get("created")
        items.append({
            "Comment": entry.get("comment", ""),
            "Created": unix_seconds(created) if isinstance(created, str) else 0,
            "CreatedBy": entry.get("created_by", ""),
            "Id": MISSING_ID,
            "Size": size,
            "Tags": None,
        })
    items.reverse()
    items[0]["Id"] = detail.image.id
    items[0]["Tags"] = list(detail.image.repo_tags) or None
    return items
