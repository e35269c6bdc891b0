"""The event log: what happened in the cluster, kept for a while in etcd.

Each event is one key under `events/`, bound to a lease so etcd deletes it
once it is old: events of one time window share a lease granted for
keep_seconds plus the window, so a busy cluster grants one lease per window
rather than one per event. The Events service (controller/api/events.py)
reads these keys and watches them.

    events/<time ns, 20 digits>-<random>   an event one controller saw
    events/cause-<cause>                   an event every replica sees (node down):
                                           the first replica to write it wins

Value: {"type", "action", "actor_id", "attributes", "time" (RFC 3339 with
nanoseconds), "time_nano", "node_id", "node_name"}.

PresenceEvents runs on every controller and turns the presence keys'
changes into node "ready" and "down" events, written once by cause.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from controller.store import Store
from kran import errors

log = logging.getLogger(__name__)

PREFIX = "events/"
CAUSE = PREFIX + "cause-"
PRESENCE = "presence/"
_MAX_WINDOW = 60.0
_CAUSE_TOKEN = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")


def rfc3339_nanos(time_ns: int) -> str:
    """A Unix time in nanoseconds as RFC 3339 UTC with nine fraction digits."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def event_value(type: str, action: str, actor_id: str, attributes: Mapping[str, str] | None,
                node_id: str, node_name: str, time_ns: int) -> dict[str, Any]:
    """The stored form of one event."""
    return {"type": type, "action": action, "actor_id": actor_id,
            "attributes": {str(k): str(v) for k, v in (attributes or {}).items()},
            "time": rfc3339_nanos(time_ns), "time_nano": time_ns,
            "node_id": node_id, "node_name": node_name}


class EventLog:
    """Writes events to the store; never fails its caller."""

    def __init__(self, store: Store, keep_seconds: int = 3600) -> None:
        if keep_seconds <= 0:
            raise errors.InvalidArgument(f"events must be kept a positive time, not {keep_seconds}s")
        self.store = store
        self.keep_seconds = keep_seconds
        # Events of one window share a lease, so each is kept between
        # keep_seconds and keep_seconds + window.
        self._window = max(1.0, min(_MAX_WINDOW, keep_seconds / 10))
        self._lease = 0
        self._lease_until = 0.0   # monotonic time after which a new lease is granted
        self._granting = asyncio.Lock()

    async def emit(self, type: str, action: str, actor_id: str,
                   attributes: Mapping[str, str] | None = None,
                   node_id: str = "", node_name: str = "") -> None:
        """Record one event (kept keep_seconds). Never raises: an event that cannot be written is logged and dropped."""
        now = time.time_ns()
        key = f"{PREFIX}{now:020d}-{secrets.token_hex(4)}"
        value = event_value(type, action, actor_id, attributes, node_id, node_name, now)
        await self._write(key, value, once=False)

    async def emit_once(self, cause: str, type: str, action: str, actor_id: str,
                        attributes: Mapping[str, str] | None = None,
                        node_id: str = "", node_name: str = "") -> None:
        """Record an event that every controller replica notices, once for all of them.

        cause names what happened so that every replica derives the same
        text (e.g. "node-down-<node id>-<presence revision>"): letters,
        digits and . _ : -. The first replica to write it wins; the others'
        writes are dropped quietly. Never raises.
        """
        if not _CAUSE_TOKEN.match(cause):
            log.error("event cause is not a plain token; event dropped",
                      extra={"cause": cause, "event_type": type, "action": action})
            return
        value = event_value(type, action, actor_id, attributes, node_id, node_name, time.time_ns())
        await self._write(CAUSE + cause, value, once=True)

    async def _write(self, key: str, value: dict[str, Any], once: bool) -> None:
        # Two attempts: a lease that etcd no longer knows (revoked, or the
        # cluster was restored from a backup) fails the write; a fresh lease fixes that.
        for attempt in range(2):
            try:
                lease = await self._current_lease()
                if once:
                    await self.store.create(key, value, lease=lease)
                else:
                    await self.store.put(key, value, lease=lease)
                return
            except errors.AlreadyExists:
                return  # another replica recorded this cause first
            except Exception as exc:  # noqa: BLE001 - an event must never fail the operation it reports
                if attempt == 0 and not isinstance(exc, errors.Unavailable):
                    self._lease_until = 0.0
                    continue
                log.warning("event not recorded", extra={
                    "event_type": value["type"], "action": value["action"],
                    "actor": value["actor_id"], "error": str(exc)})
                return

    async def _current_lease(self) -> int:
        if time.monotonic() < self._lease_until:
            return self._lease
        async with self._granting:
            now = time.monotonic()
            if now >= self._lease_until:
                ttl = int(self.keep_seconds + self._window) + 1
                self._lease = await self.store.grant_lease(ttl)
                self._lease_until = now + self._window
            return self._lease


class PresenceEvents:
    """Node "ready" and "down" events from the presence keys, written once for all replicas.

    Every controller runs one. A presence key's life (from its creation to
    its deletion) has a create revision every replica sees alike, so the
    cause of "ready" and of "down" is the node id with that revision, and
    the first replica to write the event wins. A re-registration while the
    key still exists moves the key to a new lease without ending its life,
    so it is no event.
    """

    def __init__(self, store: Store, events: EventLog, retry_seconds: float = 1.0) -> None:
        self.store = store
        self.events = events
        self.retry_seconds = retry_seconds
        self.watching = asyncio.Event()   # set once the first read is done: later changes are seen

    async def run(self) -> None:
        """Watch presence/ until cancelled; a lost or compacted watch reads again and goes on."""
        present: dict[str, int] | None = None  # node id -> create revision of its presence key
        while True:
            try:
                entries, revision = await self.store.snapshot(PRESENCE)
                now = {e.key[len(PRESENCE):]: e.create_revision for e in entries}
                if present is not None:
                    # What changed while this replica was not watching.
                    for node_id, created in present.items():
                        if now.get(node_id) != created:
                            await self._emit(node_id, "down", created)
                    for node_id, created in now.items():
                        if present.get(node_id) != created:
                            await self._emit(node_id, "ready", created)
                present = now
                self.watching.set()
                async for change in self.store.watch(PRESENCE, revision + 1):
                    node_id = change.key[len(PRESENCE):]
                    if change.kind == "put" and change.entry is not None:
                        if node_id not in present:
                            present[node_id] = change.entry.create_revision
                            await self._emit(node_id, "ready", change.entry.create_revision)
                    elif change.kind == "delete" and node_id in present:
                        await self._emit(node_id, "down", present.pop(node_id))
            except (errors.Unavailable, errors.Conflict) as exc:
                log.info("presence watch ended; reading again", extra={"error": str(exc)})
            await asyncio.sleep(self.retry_seconds)

    async def _emit(self, node_id: str, action: str, created: int) -> None:
        try:
            record = await self.store.get(f"nodes/{node_id}")
        except errors.KranError:
            record = None
        hostname = record.value.get("description", {}).get("hostname", "") if record else ""
        attributes = {"name": hostname} if hostname else {}
        await self.events.emit_once(f"node-{action}-{node_id}-{created}", "node", action, node_id,
                                    attributes, node_id=node_id, node_name=hostname)
