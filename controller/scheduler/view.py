"""The scheduler's view of the cluster: node records, presence and allocations, as etcd has them.

Each prefix is read once (a snapshot) and then followed with a watch from
that revision, so a placement needs no read of its own. The view may lag
etcd by the time a watch event takes to arrive; that is safe because every
placement writes with a compare on the allocation's mod revision (a stale
view only costs a conflict and a fresh read), and the scheduler reads etcd
afresh before it calls a request unschedulable. The placement's own writes
are put into the view at once, with the revision etcd gave them, and a
watch event older than what the view holds for a key is ignored.
"""

from __future__ import annotations

import asyncio
import logging

from controller.nodes import NodeState
from controller.scheduler import allocations
from controller.store import Change, Entry, Store
from kran import errors

log = logging.getLogger(__name__)

NODES, PRESENCE = "nodes/", "presence/"
PREFIXES = (NODES, PRESENCE, allocations.PREFIX)
RETRY_SECONDS = 1.0


class ClusterView:
    """The entries under nodes/, presence/ and allocations/, kept current by watches."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._entries: dict[str, dict[str, Entry]] = {prefix: {} for prefix in PREFIXES}
        self._synced = dict.fromkeys(PREFIXES, False)
        self._states: list[NodeState] | None = None
        self._summaries: dict[str, allocations.Summary] = {}

    @property
    def synced(self) -> bool:
        """Whether every prefix is being followed (else the scheduler reads etcd itself)."""
        return all(self._synced.values())

    async def run(self) -> None:
        """Follow the three prefixes until cancelled."""
        await asyncio.gather(*(self._follow(prefix) for prefix in PREFIXES))

    async def _follow(self, prefix: str) -> None:
        while True:
            try:
                entries, revision = await self.store.snapshot(prefix)
                self._entries[prefix] = {entry.key: entry for entry in entries}
                self._states = None
                self._synced[prefix] = True
                async for change in self.store.watch(prefix, revision + 1):
                    self._apply(prefix, change)
            except errors.KranError as exc:
                log.info("the scheduler's view of %s is behind; reading it again", prefix,
                         extra={"error": str(exc)})
            self._synced[prefix] = False
            await asyncio.sleep(RETRY_SECONDS)

    def _apply(self, prefix: str, change: Change) -> None:
        entries = self._entries[prefix]
        held = entries.get(change.key)
        if held is not None and change.revision < held.mod_revision:
            return  # older than what this controller wrote itself
        if change.entry is not None:
            entries[change.key] = change.entry
        else:
            entries.pop(change.key, None)
        if prefix != allocations.PREFIX:
            self._states = None

    def states(self) -> list[NodeState]:
        """Every node with its readiness, sorted by hostname then id (as NodeRegistry.states)."""
        if self._states is None:
            present = {key[len(PRESENCE):] for key in self._entries[PRESENCE]}
            nodes = [NodeState(entry, entry.value["id"] in present)
                     for entry in self._entries[NODES].values()]
            self._states = sorted(nodes, key=lambda node: (node.hostname, node.id))
        return self._states

    def summary(self, node_id: str) -> allocations.Summary:
        """The summary of a node's allocation (worked out once per revision of its key)."""
        entry = self._entries[allocations.PREFIX].get(allocations.key(node_id))
        revision = entry.mod_revision if entry is not None else 0
        known = self._summaries.get(node_id)
        if known is None or known.revision != revision:
            known = self._summaries[node_id] = allocations.Summary.read(node_id, entry)
        return known

    def wrote(self, key: str, value: dict, revision: int) -> None:
        """Record this controller's own write of an allocation key, made at revision."""
        held = self._entries[allocations.PREFIX].get(key)
        if held is not None and held.mod_revision > revision:
            return
        self._entries[allocations.PREFIX][key] = Entry(
            key, value, held.create_revision if held is not None else revision, revision)
