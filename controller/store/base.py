"""The store seam: JSON records under /kran/v1/, revisions and leases.

Keys passed to a Store are relative to the prefix ("nodes/<id>"). Every write
that must not race carries the revision it read (`update`) or insists the key
is new (`create`), and the store turns that into a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

PREFIX = "/kran/v1/"


@dataclass(frozen=True)
class Entry:
    """One stored record and the revisions etcd keeps for it."""

    key: str
    value: dict[str, Any]
    create_revision: int
    mod_revision: int
    lease: int = 0


@dataclass(frozen=True)
class Check:
    """A condition of a transaction: key's create or mod revision equals revision.

    A key that does not exist has both revisions 0, so `Check.absent(key)`
    makes a key unique and `Check.unchanged(entry)` guards a read-modify-write.
    """

    key: str
    target: str  # "create" | "mod"
    revision: int

    @classmethod
    def absent(cls, key: str) -> Check:
        """key must not exist."""
        return cls(key, "create", 0)

    @classmethod
    def unchanged(cls, entry: Entry) -> Check:
        """entry's key must still be at the revision it was read at."""
        return cls(entry.key, "mod", entry.mod_revision)


@dataclass(frozen=True)
class Change:
    """One change seen by a watch: a put (entry is the new record) or a delete (entry None)."""

    kind: str  # "put" | "delete"
    key: str
    entry: Entry | None
    revision: int


@dataclass(frozen=True)
class StoreStatus:
    """What the backing store says about itself."""

    version: str
    endpoint: str


class Store(Protocol):
    """A typed key-value store with leases; raises kran.errors kinds."""

    endpoints: list[str]

    async def get(self, key: str) -> Entry | None:
        """The record at key, or None."""

    async def list(self, prefix: str) -> list[Entry]:
        """Every record whose key starts with prefix, in key order."""

    async def snapshot(self, prefix: str) -> tuple[list[Entry], int]:
        """Every record under prefix and the store revision they were read at.

        Watching from that revision + 1 misses nothing and repeats nothing.
        """

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[Change]:
        """The changes under prefix from start_revision on, as they happen.

        Ends with errors.Unavailable when the store goes away and with
        errors.Conflict when start_revision has been compacted; a watcher
        then takes a new snapshot and watches again.
        """

    async def count(self, prefix: str) -> int:
        """How many keys start with prefix."""

    async def keys(self, prefix: str) -> list[str]:
        """The keys (not values) that start with prefix, in key order."""

    async def put(self, key: str, value: dict[str, Any], lease: int = 0) -> int:
        """Write key unconditionally; returns the new revision."""

    async def create(self, key: str, value: dict[str, Any], lease: int = 0) -> int:
        """Write key only if it does not exist (errors.AlreadyExists)."""

    async def update(self, key: str, value: dict[str, Any], mod_revision: int,
                     lease: int = 0) -> int:
        """Write key only if it is still at mod_revision (errors.Conflict)."""

    async def delete(self, key: str) -> bool:
        """Delete key; False if it was not there."""

    async def transaction(self, checks: list[Check], puts: dict[str, dict[str, Any]],
                          deletes: Sequence[str] = ()) -> int:
        """Apply puts and deletes atomically if every check holds (else errors.Conflict).

        Returns the store revision they were made at (0 when there were none).
        """

    async def grant_lease(self, ttl: int) -> int:
        """A new lease of ttl seconds; returns its id."""

    async def refresh_lease(self, lease_id: int) -> int:
        """Renew a lease; returns its TTL, 0 if the lease is unknown or expired."""

    async def revoke_lease(self, lease_id: int) -> None:
        """Revoke a lease (and delete its keys); unknown leases are ignored."""

    async def status(self) -> StoreStatus:
        """Version of the backing store (errors.Unavailable when it is down)."""

    async def close(self) -> None:
        """Release connections."""
