"""Image references, parsed and normalised as Docker does.

A reference is `[domain[:port]/]path[:tag][@digest]`. Docker Hub names are
normalised (`busybox` -> `docker.io/library/busybox`) and shown back in the
short "familiar" form; a name without tag or digest gets the tag `latest`.

    >>> ref = parse("busybox")
    >>> ref.full(), ref.familiar()
    ('docker.io/library/busybox:latest', 'busybox:latest')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from kran import errors

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"
_LEGACY_DOMAIN = "index.docker.io"
_OFFICIAL_PREFIX = "library/"
NAME_TOTAL_MAX = 255

# The grammar of github.com/distribution/reference, written out piece by piece.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_RE = re.compile(_DOMAIN)
# A port is only part of the name in the first component and before a '/'.
_REFERENCE_RE = re.compile(
    rf"(?P<name>(?:(?:\[[a-fA-F0-9:]+\]|[^/:@\[\]]+)(?::[0-9]+)?/)?[^:@]+)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?")
_TAG_RE = re.compile(_TAG)
_SHA256_RE = re.compile(r"sha256:[a-f0-9]{64}")
_ID_RE = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference.

    `domain` is the registry ("docker.io", "myreg:5000"), `path` the
    repository inside it ("library/busybox"), `tag` and `digest` are None
    when absent (parse() sets tag "latest" when both are absent).
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    def name(self) -> str:
        """The full repository name: "docker.io/library/busybox"."""
        return f"{self.domain}/{self.path}"

    def familiar_name(self) -> str:
        """The repository name as Docker shows it: "busybox", "myreg:5000/a/b"."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name()
        if self.path.startswith(_OFFICIAL_PREFIX) and "/" not in self.path[len(_OFFICIAL_PREFIX):]:
            return self.path[len(_OFFICIAL_PREFIX):]
        return self.path

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def full(self) -> str:
        """The complete normalised form: "docker.io/library/busybox:latest"."""
        return self.name() + self._suffix()

    def familiar(self) -> str:
        """The short form Docker prints: "busybox:latest"."""
        return self.familiar_name() + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        """This repository with `tag` and no digest; invalid tags are refused."""
        if not _TAG_RE.fullmatch(tag):
            raise errors.InvalidArgument(f"invalid tag format: {tag!r}")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        """This repository at `digest` (sha256:<hex>), without a tag."""
        if not _SHA256_RE.fullmatch(digest):
            raise errors.InvalidArgument(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
        return replace(self, tag=None, digest=digest)

    def __str__(self) -> str:
        return self.familiar()


def _split_domain(name: str) -> tuple[str, str]:
    """Split off the registry the way Docker does: a first component with '.' or ':' or 'localhost'."""
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == _LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = _OFFICIAL_PREFIX + path
    return domain, path


def parse(text: str, default_tag: bool = True) -> Reference:
    """Parse `text` as Docker's ParseNormalizedNamed; add tag "latest" if `default_tag` and none given.

    Raises errors.InvalidArgument with Docker's wording for a malformed
    reference, an upper-case repository name or a 64-hex-digit name.
    """
    if not text:
        raise errors.InvalidArgument("invalid reference format")
    if _ID_RE.fullmatch(text):
        raise errors.InvalidArgument(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    match = _REFERENCE_RE.fullmatch(text)
    if match is None:
        raise errors.InvalidArgument(f"invalid reference format: {text!r}")
    name, tag, digest = match.group("name", "tag", "digest")
    if len(name) > NAME_TOTAL_MAX:
        raise errors.InvalidArgument(
            f"invalid reference format: repository name must not be more than {NAME_TOTAL_MAX} characters")
    domain, path = _split_domain(name)
    if domain != DEFAULT_DOMAIN and not _DOMAIN_RE.fullmatch(domain):
        raise errors.InvalidArgument(f"invalid reference format: {text!r}")
    if not _PATH_RE.fullmatch(path):
        if _PATH_RE.fullmatch(path.lower()):
            raise errors.InvalidArgument("invalid reference format: repository name must be lowercase")
        raise errors.InvalidArgument(f"invalid reference format: {text!r}")
    if digest is not None and not _SHA256_RE.fullmatch(digest):
        raise errors.InvalidArgument(f"invalid reference format: unsupported digest {digest!r}")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def parse_tagged(text: str) -> Reference:
    """Parse a reference that will name an image (tag, import, load): a digest is refused."""
    ref = parse(text)
    if ref.digest is not None:
        raise errors.InvalidArgument(f"refusing to create a tag with a digest reference: {text}")
    return ref


def is_full_id(text: str) -> bool:
    """Whether `text` is a complete image id: "sha256:<64 hex>" or 64 hex digits."""
    return bool(_SHA256_RE.fullmatch(text) or _ID_RE.fullmatch(text))


def id_prefix(text: str) -> str | None:
    """The hex digits of `text` if it can be an image id or id prefix ("sha256:ab", "ab"), else None."""
    hexpart = text.removeprefix("sha256:")
    return hexpart if re.fullmatch(r"[a-f0-9]{1,64}", hexpart) else None
