"""The Store over etcd v3 (aetcd), with JSON values under /kran/v1/.

Several endpoints may be given; a call that cannot reach one endpoint is
tried on the next, and when none answers the caller gets
errors.Unavailable naming them. gRPC channels reconnect on their own, with
a short backoff so a restarted etcd is noticed within seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aetcd

from controller.metrics import ETCD_SECONDS
from controller.store.base import PREFIX, Change, Check, Entry, StoreStatus
from kran import errors
from kran.defaults import join_hostport, split_hostport

log = logging.getLogger(__name__)

T = TypeVar("T")

ETCD_PORT = 2379
CALL_TIMEOUT = 5
_CHANNEL_OPTIONS = {
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.min_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 2000,
    # A range read of tens of thousands of records (tasks, container states)
    # is far above gRPC's 4 MiB default for a received message.
    "grpc.max_receive_message_length": 1 << 30,
}
# Errors that say "this endpoint did not answer", as opposed to a refusal.
_UNREACHABLE = (aetcd.ConnectionFailedError, aetcd.ConnectionTimeoutError,
                asyncio.TimeoutError)


def parse_endpoints(value: str) -> list[str]:
    """Split "host:port[,host:port...]" into normalised endpoints.

    Raises errors.InvalidArgument for an empty list or a bad address.
    """
    endpoints = []
    for item in value.split(","):
        if not item.strip():
            continue
        try:
            host, port = split_hostport(item, ETCD_PORT)
        except ValueError as exc:
            raise errors.InvalidArgument(f"invalid etcd endpoint {item!r}: {exc}") from None
        endpoints.append(join_hostport(host, port))
    if not endpoints:
        raise errors.InvalidArgument("no etcd endpoint given")
    return endpoints


def _key(key: str) -> bytes:
    return (PREFIX + key).encode()


def _entry(kv: Any) -> Entry:
    return Entry(key=kv.key.decode()[len(PREFIX):], value=json.loads(kv.value),
                 create_revision=kv.create_revision, mod_revision=kv.mod_revision,
                 lease=kv.lease)


def _encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class EtcdStore:
    """kran's records in an etcd cluster reached at endpoints."""

    def __init__(self, endpoints: list[str]) -> None:
        self.endpoints = list(endpoints)
        self._clients: dict[str, aetcd.Client] = {}
        self._current = 0
        # None until the first answer or failure, so startup waits stay quiet.
        self._reachable: bool | None = None

    def _client(self, endpoint: str) -> aetcd.Client:
        client = self._clients.get(endpoint)
        if client is None:
            host, port = split_hostport(endpoint, ETCD_PORT)
            client = aetcd.Client(host=host.strip("[]"), port=port, timeout=CALL_TIMEOUT,
                                  options=dict(_CHANNEL_OPTIONS))
            self._clients[endpoint] = client
        return client

    async def _call(self, operation: str, fn: Callable[[aetcd.Client], Awaitable[T]]) -> T:
        """Run fn on the current endpoint, failing over to the others."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            last: BaseException | None = None
            for step in range(len(self.endpoints)):
                index = (self._current + step) % len(self.endpoints)
                try:
                    result = await fn(self._client(self.endpoints[index]))
                except _UNREACHABLE as exc:
                    last = exc
                    continue
                self._current = index
                if self._reachable is False:
                    log.info("etcd is reachable again", extra={"etcd": self.endpoints[index]})
                self._reachable = True
                return result
            outcome = "unavailable"
            if self._reachable:
                log.warning("etcd is unavailable; retrying on each request",
                            extra={"etcd": ",".join(self.endpoints), "error": str(last)})
                self._reachable = False
            raise errors.Unavailable(f"etcd at {','.join(self.endpoints)} is unavailable")
        except errors.KranError:
            if outcome == "ok":
                outcome = "refused"
            raise
        except aetcd.ClientError as exc:
            outcome = "error"
            raise errors.Internal(f"etcd {operation} failed: {exc}") from exc
        finally:
            ETCD_SECONDS.labels(operation, outcome).observe(time.perf_counter() - started)

    async def get(self, key: str) -> Entry | None:
        """The record at key, or None."""
        kv = await self._call("get", lambda c: c.get(_key(key)))
        return _entry(kv) if kv is not None else None

    async def list(self, prefix: str) -> list[Entry]:
        """Every record whose key starts with prefix, in key order."""
        found = await self._call("list", lambda c: c.get_prefix(_key(prefix), sort_order="ascend"))
        return [_entry(kv) for kv in found]

    async def snapshot(self, prefix: str) -> tuple[list[Entry], int]:
        """Every record under prefix and the store revision they were read at."""
        found = await self._call("list", lambda c: c.get_prefix(_key(prefix), sort_order="ascend"))
        return [_entry(kv) for kv in found], found.header.revision

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[Change]:
        """The changes under prefix from start_revision on, as they happen."""
        watch = await self._call("watch", lambda c: c.watch_prefix(
            _key(prefix), start_revision=start_revision))
        try:
            async for event in watch:
                kv = event.kv
                key = kv.key.decode()[len(PREFIX):]
                if event.kind == "PUT":
                    yield Change("put", key, _entry(kv), kv.mod_revision)
                else:
                    yield Change("delete", key, None, kv.mod_revision)
        except _UNREACHABLE as exc:
            raise errors.Unavailable(f"lost the etcd watch on {prefix}: {exc}") from exc
        except aetcd.ClientError as exc:
            if "compacted" in str(exc):
                raise errors.Conflict(f"revision {start_revision} of {prefix} is compacted; "
                                      "read again") from exc
            raise errors.Unavailable(f"lost the etcd watch on {prefix}: {exc}") from exc
        finally:
            try:
                await watch.cancel()
            except (aetcd.ClientError, *_UNREACHABLE):
                pass

    async def count(self, prefix: str) -> int:
        """How many keys start with prefix."""
        found = await self._call("count", lambda c: c.get_prefix(_key(prefix), keys_only=True))
        return found.count

    async def keys(self, prefix: str) -> list[str]:
        """The keys (not values) that start with prefix, in key order."""
        found = await self._call("keys", lambda c: c.get_prefix(
            _key(prefix), keys_only=True, sort_order="ascend"))
        return [kv.key.decode()[len(PREFIX):] for kv in found]

    async def put(self, key: str, value: dict[str, Any], lease: int = 0) -> int:
        """Write key unconditionally; returns the new revision."""
        done = await self._call("put", lambda c: c.put(_key(key), _encode(value), lease=lease or None))
        return done.header.revision

    async def _txn(self, operation: str, key: str, value: dict[str, Any], lease: int,
                   compare: Callable[[aetcd.Client], Any]) -> bool:
        async def run(c: aetcd.Client) -> bool:
            succeeded, _ = await c.transaction(
                compare=[compare(c)],
                success=[c.transactions.put(_key(key), _encode(value), lease=lease or None)],
                failure=[])
            return succeeded
        return await self._call(operation, run)

    async def create(self, key: str, value: dict[str, Any], lease: int = 0) -> int:
        """Write key only if it does not exist (errors.AlreadyExists)."""
        if not await self._txn("create", key, value, lease,
                               lambda c: c.transactions.create(_key(key)) == 0):
            raise errors.AlreadyExists(f"{key} already exists")
        return await self._revision_of(key)

    async def update(self, key: str, value: dict[str, Any], mod_revision: int,
                     lease: int = 0) -> int:
        """Write key only if it is still at mod_revision (errors.Conflict)."""
        if not await self._txn("update", key, value, lease,
                               lambda c: c.transactions.mod(_key(key)) == mod_revision):
            raise errors.Conflict(f"{key} was changed by someone else; read it again and retry")
        return await self._revision_of(key)

    async def _revision_of(self, key: str) -> int:
        entry = await self.get(key)
        return entry.mod_revision if entry else 0

    async def delete(self, key: str) -> bool:
        """Delete key; False if it was not there."""
        return await self._call("delete", lambda c: c.delete(_key(key))) is not None

    async def transaction(self, checks: list[Check], puts: dict[str, dict[str, Any]],
                          deletes: Sequence[str] = ()) -> int:
        """Apply puts and deletes atomically if every check holds (else errors.Conflict).

        Returns the store revision they were made at (0 when there were none).
        """
        async def run(c: aetcd.Client) -> int | None:
            compare = [(c.transactions.create(_key(check.key)) if check.target == "create"
                        else c.transactions.mod(_key(check.key))) == check.revision
                       for check in checks]
            success = [c.transactions.put(_key(key), _encode(value)) for key, value in puts.items()]
            success += [c.transactions.delete(_key(key)) for key in deletes]
            succeeded, responses = await c.transaction(compare=compare, success=success, failure=[])
            if not succeeded:
                return None
            if not responses:
                return 0
            first = responses[0]
            return getattr(first, first.WhichOneof("response")).header.revision
        revision = await self._call("txn", run)
        if revision is None:
            raise errors.Conflict("the records changed meanwhile; read them again and retry")
        return revision

    async def grant_lease(self, ttl: int) -> int:
        """A new lease of ttl seconds; returns its id."""
        lease = await self._call("lease_grant", lambda c: c.lease(ttl))
        return lease.id

    async def refresh_lease(self, lease_id: int) -> int:
        """Renew a lease; returns its TTL, 0 if the lease is unknown or expired."""
        reply = await self._call("lease_refresh", lambda c: c.refresh_lease(lease_id))
        return int(reply.TTL) if reply is not None else 0

    async def revoke_lease(self, lease_id: int) -> None:
        """Revoke a lease (and delete its keys); unknown leases are ignored."""
        async def run(c: aetcd.Client) -> None:
            try:
                await c.revoke_lease(lease_id)
            except aetcd.ClientError as exc:
                if "lease not found" not in str(exc):
                    raise
        await self._call("lease_revoke", run)

    async def status(self) -> StoreStatus:
        """Version of the etcd member that answered."""
        reply = await self._call("status", lambda c: c.status())
        return StoreStatus(version=reply.version, endpoint=self.endpoints[self._current])

    async def close(self) -> None:
        """Close every endpoint's channel."""
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
