"""The controller's Events service: `docker events` over the kept events in etcd.

With `since`, a stream first sends the kept events at or after it (one
read of `events/`, sorted by time), then the new ones from a watch that
starts right after that read's revision, so nothing is missed or sent
twice. Without `since` it reads only the store's revision. `until` ends
the stream (an `until` in the past: history only). Each stream has its own
watch, so any number of clients can follow at once; a watch that loses
etcd ends the stream with UNAVAILABLE, one whose revision was compacted
reads again and goes on.

Response headers go out once the starting revision is fixed: a client
that waits for them knows that every later event will reach it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from controller import event_filters
from controller.events import PREFIX
from controller.store import Entry, Store
from kran import errors
from kran.api.v1 import events_pb2, events_pb2_grpc

log = logging.getLogger(__name__)

# A prefix under events/ that no key has (keys are digits or "cause-"): reading
# it costs nothing and answers the store's current revision.
_NOTHING = PREFIX + "~revision"


def to_proto(value: dict[str, Any]) -> events_pb2.Event:
    """The Event message of a stored event."""
    event = events_pb2.Event(type=value["type"], action=value["action"],
                             actor=events_pb2.EventActor(id=value["actor_id"],
                                                         attributes=value.get("attributes", {})),
                             node_id=value.get("node_id", ""),
                             node_name=value.get("node_name", ""))
    seconds, nanos = divmod(int(value["time_nano"]), 1_000_000_000)
    event.time.seconds, event.time.nanos = seconds, nanos
    return event


def _nanos(stamp: Any, present: bool) -> int | None:
    return stamp.seconds * 1_000_000_000 + stamp.nanos if present else None


def _well_formed(entry: Entry) -> bool:
    value = entry.value
    return isinstance(value, dict) and all(k in value for k in ("type", "action", "actor_id",
                                                                "time_nano"))


class EventsService(events_pb2_grpc.EventsServicer):
    """kran.api.v1.Events: history and live events of the whole cluster."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def Stream(self, request: events_pb2.EventsRequest,
                     context: grpc.aio.ServicerContext) -> AsyncIterator[events_pb2.Event]:
        match = event_filters.matcher({k: list(v.values) for k, v in request.filters.items()})
        since = _nanos(request.since, request.HasField("since"))
        until = _nanos(request.until, request.HasField("until"))
        if since is not None and until is not None and until < since:
            raise errors.InvalidArgument("until is before since")

        def wanted(value: dict[str, Any]) -> bool:
            stamp = int(value["time_nano"])
            return ((since is None or stamp >= since) and (until is None or stamp <= until)
                    and match(value))

        sent: set[str] = set()
        history, revision = await self._read(since is not None)
        await context.send_initial_metadata(())
        for entry in history:
            sent.add(entry.key)
            if wanted(entry.value):
                yield to_proto(entry.value)
        if until is not None and until <= time.time_ns():
            return
        while True:
            try:
                async for entry in self._follow(revision, until):
                    if entry.key not in sent and wanted(entry.value):
                        yield to_proto(entry.value)
                return
            except errors.Conflict:
                # Compacted past our revision: read again and send what is new.
                log.info("events watch compacted; reading again")
                history, revision = await self._read(True)
                for entry in history:
                    if entry.key not in sent and wanted(entry.value):
                        yield to_proto(entry.value)
                sent = {entry.key for entry in history}

    async def _read(self, with_history: bool) -> tuple[list[Entry], int]:
        """The kept events (sorted by time) when asked for, and the revision read at."""
        if not with_history:
            _, revision = await self.store.snapshot(_NOTHING)
            return [], revision
        entries, revision = await self.store.snapshot(PREFIX)
        kept = [entry for entry in entries if _well_formed(entry)]
        kept.sort(key=lambda entry: (int(entry.value["time_nano"]), entry.key))
        return kept, revision

    async def _follow(self, revision: int, until: int | None) -> AsyncIterator[Entry]:
        """New events after revision, until `until` passes (Unavailable/Conflict end it)."""
        changes = aiter(self.store.watch(PREFIX, revision + 1))
        try:
            while True:
                if until is None:
                    change = await anext(changes)
                else:
                    remaining = (until - time.time_ns()) / 1e9
                    if remaining <= 0:
                        return
                    try:
                        change = await asyncio.wait_for(anext(changes), remaining)
                    except TimeoutError:
                        return
                if change.kind == "put" and change.entry is not None and _well_formed(change.entry):
                    if until is not None and int(change.entry.value["time_nano"]) > until:
                        return
                    yield change.entry
        except StopAsyncIteration:
            raise errors.Unavailable("the events watch ended; try again") from None
        finally:
            await _close(changes)


async def _close(changes: Any) -> None:
    close = getattr(changes, "aclose", None)
    if close is not None:
        try:
            await close()
        except RuntimeError:
            pass  # already running its own cleanup after a cancelled read

