"""Leader election over etcd: one controller at a time runs the reconcilers.

The leader holds the key `leader` (value {"identity", "since"}), bound to a
lease of `ttl` seconds that it keeps alive. The others watch that key and
campaign when it goes away: a leader that stops renewing loses the key when
the lease expires. A leader that cannot renew its lease before the lease
would have expired cancels its work at once, before another controller can
be elected, so two leaders never work at the same time for longer than the
time a cancelled write takes to fail: each write of the reconcilers carries
`Leadership.fence`, the leader key's create revision, and fails once the key
belongs to someone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from controller.store import Check, Store
from kran import errors
from kran.defaults import CONTROLLER_PORT, join_hostport, split_hostport

log = logging.getLogger(__name__)

KEY = "leader"
DEFAULT_TTL = 3
_RETRY = 0.5            # seconds between attempts while etcd does not answer
_RESIGN_PAUSE = 1.0     # seconds a leader whose work failed waits before campaigning again


async def current_leader(store: Store) -> str:
    """The identity of the leading controller, "" if there is none."""
    entry = await store.get(KEY)
    return str(entry.value.get("identity", "")) if entry is not None else ""


class Leadership:
    """Campaign for the leader key and run the leader's work while holding it."""

    def __init__(self, store: Store, identity: str, ttl: int = DEFAULT_TTL) -> None:
        if ttl < 2:
            raise errors.InvalidArgument("the leader lease TTL must be at least 2 seconds")
        self.store = store
        self.identity = identity
        self.ttl = ttl
        self._fence: Check | None = None

    @property
    def is_leader(self) -> bool:
        """Whether this controller holds the leader key now."""
        return self._fence is not None

    @property
    def fence(self) -> Check:
        """The check that the leader key is still this controller's (errors.FailedPrecondition if not leader)."""
        if self._fence is None:
            raise errors.FailedPrecondition(f"controller {self.identity} is not the leader")
        return self._fence

    async def run(self, on_elected: Callable[[], Awaitable[None]]) -> None:
        """Campaign forever: while elected, run on_elected; when leadership is lost, cancel it."""
        while True:
            lease, revision = await self._campaign()
            self._fence = Check(KEY, "create", revision)
            log.info("elected leader", extra={"identity": self.identity, "lease": lease,
                                              "revision": revision})
            work = asyncio.create_task(on_elected())
            try:
                failed = await self._hold(lease, work)
            finally:
                self._fence = None
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
                # Resign: the next leader need not wait for the lease to expire.
                with contextlib.suppress(errors.KranError):
                    await asyncio.shield(self.store.revoke_lease(lease))
            if failed:
                await asyncio.sleep(_RESIGN_PAUSE)

    async def _campaign(self) -> tuple[int, int]:
        """Wait until this controller creates the leader key; its lease and the key's revision."""
        while True:
            try:
                lease = await self.store.grant_lease(self.ttl)
                try:
                    revision = await self.store.create(KEY, {
                        "identity": self.identity,
                        "since": datetime.now(timezone.utc).isoformat(timespec="milliseconds")},
                        lease=lease)
                    return lease, revision
                except errors.AlreadyExists:
                    await self.store.revoke_lease(lease)
                await self._wait_vacant()
            except errors.KranError as exc:
                log.info("cannot campaign for leadership now; retrying",
                         extra={"identity": self.identity, "error": str(exc)})
                await asyncio.sleep(_RETRY)

    async def _wait_vacant(self) -> None:
        """Return once the leader key is gone (or after a lease's time, to look again)."""
        entry = await self.store.get(KEY)
        if entry is None:
            return
        if entry.value.get("identity") == self.identity:
            # Our own key from before a restart or a lost renewal: let it go now.
            await self.store.revoke_lease(entry.lease)
            return

        async def deleted() -> None:
            async with contextlib.aclosing(self.store.watch(KEY, entry.mod_revision + 1)) as changes:
                async for change in changes:
                    if change.key == KEY and change.kind == "delete":
                        return
        with contextlib.suppress(asyncio.TimeoutError, errors.Conflict):
            await asyncio.wait_for(deleted(), timeout=self.ttl)

    async def _hold(self, lease: int, work: asyncio.Task[None]) -> bool:
        """Keep the lease alive while work runs; True if work failed, False if leadership was lost."""
        interval = self.ttl / 3
        renewed = time.monotonic()  # the lease lasts ttl seconds from the last renewal sent
        pause = interval
        while True:
            done, _ = await asyncio.wait({work}, timeout=pause)
            if done:
                exc = None if work.cancelled() else work.exception()
                log.error("the leader's work ended; resigning",
                          extra={"identity": self.identity, "error": repr(exc)})
                return True
            sent = time.monotonic()
            remaining = renewed + self.ttl - sent - interval / 2
            if remaining <= 0:
                log.warning("could not renew the leader lease in time; leadership lost",
                            extra={"identity": self.identity, "lease": lease})
                return False
            try:
                ttl, entry = await asyncio.wait_for(asyncio.gather(
                    self.store.refresh_lease(lease), self.store.get(KEY)), timeout=remaining)
            except (asyncio.TimeoutError, errors.KranError) as exc:
                log.info("leader lease renewal failed; retrying",
                         extra={"identity": self.identity, "error": str(exc) or "timeout"})
                pause = _RETRY / 2
                continue
            if ttl <= 0 or entry is None or entry.lease != lease:
                log.warning("the leader lease expired; leadership lost",
                            extra={"identity": self.identity, "lease": lease})
                return False
            renewed, pause = sent, interval


def identity_for(listen: str) -> str:
    """A controller's identity from its listen address: host:port, the hostname for a wildcard."""
    host, port = split_hostport(listen, CONTROLLER_PORT)
    if host in ("0.0.0.0", "::", "[::]", ""):
        host = socket.gethostname()
    return join_hostport(host, port)
