"""Debian's docker-registry for the CLI tests: one process on a free loopback port, plain HTTP.

`start_registry` runs it with storage under the test's directory (and an
htpasswd file with `users`); `Registry` says where it is, the agent flags
that make it the docker.io mirror, and reads tags and digests back with
plain HTTP requests. The process belongs to the caller's Processes, which
kills it by pid.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.distkit import RegistryProcess
from tests.procs import Proc, Processes

_ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"))


@dataclass
class Registry:
    """A running docker-registry: HOST:PORT, its process and its htpasswd users."""

    address: str
    proc: Proc
    users: dict[str, str] = field(default_factory=dict)

    @property
    def mirror_args(self) -> list[str]:
        """kran-agent flags that make this registry the docker.io mirror."""
        return ["--registry-mirror", f"http://{self.address}", "--insecure-registry", self.address]

    def _get(self, path: str, user: str | None = None, method: str = "GET",
             headers: dict[str, str] | None = None) -> urllib.request.addinfourl:
        request = urllib.request.Request(f"http://{self.address}{path}", method=method, headers=headers or {})
        if user is not None:
            token = base64.b64encode(f"{user}:{self.users[user]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        return urllib.request.urlopen(request, timeout=10)

    def tags(self, repository: str, user: str | None = None) -> list[str]:
        """The repository's tags, sorted."""
        with self._get(f"/v2/{repository}/tags/list", user) as reply:
            return sorted(json.loads(reply.read()).get("tags") or [])

    def manifest_digest(self, repository: str, tag: str, user: str | None = None) -> str:
        """The digest the registry gives the manifest `repository:tag`."""
        with self._get(f"/v2/{repository}/manifests/{tag}", user, "HEAD", {"Accept": _ACCEPT}) as reply:
            return reply.headers["Docker-Content-Digest"]


def start_registry(processes: Processes, workdir: Path, users: dict[str, str] | None = None) -> Registry:
    """Start docker-registry on a free loopback port with data under `workdir`; wait until it serves."""
    process = RegistryProcess(processes, workdir, users=users)
    return Registry(process.host, process.proc, dict(users or {}))
