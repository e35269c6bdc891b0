"""Which URL serves a registry, and how to talk to it: mirrors, plain HTTP, per-registry CAs.

A reference's domain (`docker.io`, `myreg:5000`) becomes a list of
endpoints tried in order:

- `docker.io` pulls go to the configured mirrors (`--registry-mirror`).
  Docker Hub itself (`registry-1.docker.io`) is reached only when the agent
  is told it may (`--allow-docker-hub`): for pulls without a mirror, and for
  pushes and logins. A node never reaches out to a public registry on its
  own, so a cluster (and every test) stays inside the registries it names.
- `--insecure-registry HOST:PORT`: HTTPS without certificate checks, then
  plain HTTP when the server does not speak TLS (Docker's behaviour).
- A loopback registry (`localhost`, 127.0.0.0/8, ::1): HTTPS, verified, and
  plain HTTP when the server does not speak TLS, so `localhost:5000` works
  as with Docker; a loopback registry that does speak TLS must be trusted.
- Anything else: HTTPS, verified against the system's CAs plus every
  `*.crt` in `<certs dir>/<HOST:PORT>/` (default certs dirs:
  /etc/kran/certs.d and Docker's /etc/docker/certs.d); a `*.cert`/`*.key`
  pair there is presented as a client certificate.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from kran import errors, reference

DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
DEFAULT_CERTS_DIRS = (Path("/etc/kran/certs.d"), Path("/etc/docker/certs.d"))
DEFAULT_MAX_DOWNLOADS = 3
DEFAULT_MAX_UPLOADS = 5
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class RegistryOptions:
    """The agent's registry settings (its --registry-mirror, --insecure-registry, ... flags)."""

    mirrors: tuple[str, ...] = ()              # base URLs: "https://mirror.example:5000"
    insecure: tuple[str, ...] = ()             # "host:port" entries
    certs_dirs: tuple[Path, ...] = DEFAULT_CERTS_DIRS
    max_downloads: int = DEFAULT_MAX_DOWNLOADS
    max_uploads: int = DEFAULT_MAX_UPLOADS
    allow_hub: bool = False                    # may docker.io mean Docker Hub itself


@dataclass(frozen=True)
class Endpoint:
    """One way to reach a registry: base URL (no trailing slash) and TLS settings.

    `host` is the HOST[:PORT] the endpoint serves (the certs dir name);
    `verify` is False for an insecure registry; `mirror` marks a docker.io mirror.
    """

    url: str
    host: str
    verify: bool = True
    mirror: bool = False
    certs_dirs: tuple[Path, ...] = field(default=DEFAULT_CERTS_DIRS, compare=False)

    @property
    def secure(self) -> bool:
        """Whether the endpoint speaks HTTPS."""
        return self.url.startswith("https://")

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What httpx's `verify` takes: a context with the registry's CAs, or False for plain HTTP."""
        if not self.secure:
            return False
        if not self.verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        return tls_context(self.host, self.certs_dirs)

    def trust_hint(self) -> str:
        """How a user makes this endpoint's certificate trusted (for error messages)."""
        first = self.certs_dirs[0] if self.certs_dirs else DEFAULT_CERTS_DIRS[0]
        return (f"to trust it, put the registry's CA certificate in {first}/{self.host}/ca.crt "
                f"on the node, or start kran-agent with --insecure-registry {self.host}")


def tls_context(host: str, certs_dirs: tuple[Path, ...]) -> ssl.SSLContext:
    """A verifying TLS context: the system's CAs plus the registry's own from the certs dirs."""
    context = ssl.create_default_context()
    for base in certs_dirs:
        directory = base / host
        if not directory.is_dir():
            continue
        for ca in sorted(directory.glob("*.crt")):
            context.load_verify_locations(cafile=str(ca))
        for cert in sorted(directory.glob("*.cert")):
            key = cert.with_suffix(".key")
            if not key.is_file():
                raise errors.FailedPrecondition(f"client certificate {cert} has no key {key}")
            context.load_cert_chain(str(cert), str(key))
    return context


def is_hub(domain: str) -> bool:
    """Whether `domain` names Docker Hub."""
    return domain.lower() in _HUB_ALIASES


def _host_of(hostport: str) -> str:
    host = hostport
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(hostport: str) -> bool:
    """Whether HOST[:PORT] names this machine's loopback (localhost, 127.0.0.0/8, ::1)."""
    host = _host_of(hostport).lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_mirror(url: str) -> str:
    """Validate a --registry-mirror URL and return it without a trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.InvalidArgument(f"invalid mirror {url!r}: expected http(s)://HOST[:PORT]")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise errors.InvalidArgument(f"invalid mirror {url!r}: path, query, or fragment at end of the URI")
    return f"{parts.scheme}://{parts.netloc}"


def check_insecure(entry: str) -> str:
    """Validate an --insecure-registry entry (HOST[:PORT], a scheme is dropped)."""
    value = entry.strip()
    for scheme in ("http://", "https://"):
        value = value.removeprefix(scheme)
    value = value.rstrip("/")
    if not value or "/" in value:
        raise errors.InvalidArgument(f"invalid --insecure-registry {entry!r}: expected HOST[:PORT]")
    return value.lower()


def registry_of(server_address: str) -> str:
    """The registry domain a login or search names: "" and Docker Hub's URLs -> docker.io.

    Accepts "myreg:5000", "https://myreg:5000", "https://index.docker.io/v1/".
    """
    value = server_address.strip()
    if not value:
        return reference.DEFAULT_DOMAIN
    if "://" in value:
        value = urlsplit(value).netloc
    value = value.split("/", 1)[0].lower()
    if not value:
        raise errors.InvalidArgument(f"invalid registry address {server_address!r}")
    return reference.DEFAULT_DOMAIN if is_hub(value) else value


def endpoints(domain: str, options: RegistryOptions, *, pull: bool) -> list[Endpoint]:
    """The endpoints to try, in order, for the registry `domain`.

    `pull` selects the mirrors for docker.io; pushes and logins go to the
    registry itself.
    """
    dirs = options.certs_dirs
    if is_hub(domain):
        if pull and options.mirrors:
            return [_mirror(url, options) for url in options.mirrors]
        if not options.allow_hub:
            raise errors.FailedPrecondition(
                "docker.io is not reachable from this node: start kran-agent with --registry-mirror URL "
                "for docker.io images" + ("" if pull else ", or --allow-docker-hub to use Docker Hub"))
        return [Endpoint(f"https://{DOCKER_HUB_ENDPOINT}", DOCKER_HUB_ENDPOINT, certs_dirs=dirs)]
    host = domain.lower()
    if host in options.insecure:
        return [Endpoint(f"https://{host}", host, verify=False, certs_dirs=dirs),
                Endpoint(f"http://{host}", host, verify=False, certs_dirs=dirs)]
    secure = Endpoint(f"https://{host}", host, certs_dirs=dirs)
    if is_loopback(host):
        return [secure, Endpoint(f"http://{host}", host, verify=False, certs_dirs=dirs)]
    return [secure]


def _mirror(url: str, options: RegistryOptions) -> Endpoint:
    host = urlsplit(url).netloc.lower()
    insecure = host in options.insecure or url.startswith("http://")
    return Endpoint(url, host, verify=not insecure, mirror=True, certs_dirs=options.certs_dirs)
