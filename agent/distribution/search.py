"""docker search, for registries that list their repositories: the catalog (GET /v2/_catalog).

A term may name its registry ("myreg:5000/busy"); otherwise the docker.io
endpoints (its mirrors) are asked. Repositories whose name contains the
term are returned, in the registry's order, at most `limit` of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.distribution.auth import CATALOG_SCOPE, Credentials
from agent.distribution.client import RegistryError, connect, next_link
from agent.distribution.registries import RegistryOptions, is_hub
from kran import errors, reference

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
PAGE = 100
MAX_CATALOG = 4 << 20


@dataclass(frozen=True)
class Found:
    """One search result."""

    name: str
    official: bool


def split_term(term: str) -> tuple[str, str]:
    """(registry domain, term): "myreg:5000/busy" -> ("myreg:5000", "busy"); "busy" -> ("docker.io", "busy")."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower(), rest
    return reference.DEFAULT_DOMAIN, term


async def search(options: RegistryOptions, term: str, limit: int, credentials: Credentials) -> list[Found]:
    """The catalog entries of the term's registry whose name contains the term."""
    if limit == 0:
        limit = DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.InvalidArgument(f"invalid limit: limit {limit} is outside the range of [1, {MAX_LIMIT}]")
    domain, needle = split_term(term.strip())
    needle = needle.lower()
    hub = is_hub(domain)
    client = await connect(domain, options, credentials.for_registry(domain), pull=True)
    found: list[Found] = []
    try:
        path: str | None = f"/v2/_catalog?n={PAGE}"
        while path and len(found) < limit:
            try:
                response = await client.call("GET", path, scopes=(CATALOG_SCOPE,), limit=MAX_CATALOG)
            except RegistryError as exc:
                if exc.status in (404, 405) or exc.has("UNSUPPORTED"):
                    raise errors.FailedPrecondition(
                        f"the registry {domain} does not list its repositories: {exc.text()}") from None
                raise exc.to_kran() from None
            names = response.json().get("repositories") or []
            for name in names:
                if isinstance(name, str) and needle in name.lower():
                    official = hub and name.startswith("library/") and name.count("/") == 1
                    shown = name.removeprefix("library/") if official else (name if hub else f"{domain}/{name}")
                    found.append(Found(shown, official))
            path = next_link(response.headers.get("link", ""))
    finally:
        await client.close()
    return found[:limit]
