"""The scheduler: pick a node for each request and reserve room there, in etcd.

One `place()` call reads the nodes and every node's allocation once, asks
the candidate nodes' agents once per distinct image, then places the
requests kind by kind (requests with the same placement, limits, ports,
image and group are one kind: a service's tasks are one kind), in memory.
It then writes each touched node's allocation key in a transaction that
compares the key's mod revision with the one read, so two controllers
never double-book a node. A node whose key changed meanwhile is read again
and its requests placed again (a bounded number of rounds).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from controller.agents import AgentPool
from controller.metrics import PLACEMENT_SECONDS, PLACEMENTS
from controller.nodes import NodeRegistry, NodeState
from controller.nodes import resolve as resolve_node
from controller.scheduler import allocations, constraints, filters, strategies
from controller.scheduler.allocations import Load, Reservation
from controller.scheduler.filters import Candidate, Filter
from controller.scheduler.images import ImagePresence
from controller.scheduler.view import ClusterView
from controller.store import Check, Store
from kran import errors, reference
from kran.api.v1 import containers_pb2, nodes_pb2

log = logging.getLogger(__name__)

ROUNDS = 8                 # placement rounds before conflicts are given up on
_CONCURRENCY = 64          # etcd transactions in flight at once
_RELEASE_RETRIES = 10
_BATCH_CALLS = 256         # place() calls placed together at most


def shown_image(image: str) -> str:
    """The image as Docker names it in "No such image": familiar with tag, or the id as given."""
    if reference.is_full_id(image):
        return image
    return reference.parse(image).familiar()


@dataclass(frozen=True)
class Request:
    """One container to place."""

    key: str                              # the container id that will hold the reservation
    placement: containers_pb2.Placement   # constraints, reservations, strategy
    image: str = ""                       # the node must hold it
    memory_limit: int = 0                 # a node with less memory than the limit cannot take it
    nano_cpus_limit: int = 0
    ports: tuple[str, ...] = ()           # published host ports "8080/tcp"
    pinned: str = ""                      # --node: id, prefix or hostname
    spread_key: str = ""                  # spread also counts only this group's containers


@dataclass(frozen=True)
class Placed:
    """A request and the node it is now reserved on."""

    request: Request
    node: NodeState


class Unschedulable(errors.FailedPrecondition):
    """No node can take the request; the message says which filter left none."""


def _kind_of(request: Request) -> tuple:
    p = request.placement
    return (tuple(p.constraints), p.reserve_nano_cpus, p.reserve_memory_bytes, p.strategy,
            request.image, request.memory_limit, request.nano_cpus_limit, request.ports,
            request.pinned, request.spread_key)


@dataclass
class _Kind:
    """Requests that place alike, and what placing them takes."""

    sample: Request
    strategy: str
    indices: list[int] = field(default_factory=list)
    static: list[Filter] = field(default_factory=list)
    dynamic: list[Filter] = field(default_factory=list)
    eligible: list[Candidate] = field(default_factory=list)
    error: errors.KranError | None = None

    @property
    def reservation(self) -> Reservation:
        p = self.sample.placement
        return Reservation(p.reserve_nano_cpus, p.reserve_memory_bytes, self.sample.ports,
                           self.sample.spread_key)

    def fits(self, node: Candidate) -> bool:
        return all(f.check(node) for f in self.dynamic)


class Scheduler:
    """Places containers on nodes and keeps what they reserve (allocations/<node>)."""

    def __init__(self, store: Store, nodes: NodeRegistry, agents: AgentPool,
                 strategy: str = "spread") -> None:
        if strategy not in strategies.STRATEGIES:
            raise errors.InvalidArgument(_bad_strategy(strategy))
        self.store = store
        self.nodes = nodes
        self.agents = agents
        self.strategy = strategy
        self.rng = random.Random()
        self.images = ImagePresence(agents)
        self._queue: list[tuple[list[Request], asyncio.Future]] = []
        self._placer: asyncio.Task | None = None
        self.view: ClusterView | None = None

    async def run(self) -> None:
        """Keep a watched view of nodes and allocations for placements, until cancelled.

        Without it (as in tests) every placement reads them from etcd.
        """
        self.view = ClusterView(self.store)
        try:
            await self.view.run()
        finally:
            self.view = None

    # -- placing -----------------------------------------------------------

    async def place(self, requests: Sequence[Request]) -> list[Placed | errors.KranError]:
        """Pick a node for each request and reserve it there (results in request order).

        A request that fits nowhere gets Unschedulable saying why; one whose
        image no candidate node holds gets NotFound "No such image: ...".
        Calls made while a placement is under way are placed together next,
        as one batch: concurrent callers neither wait in line one by one nor
        race each other for the same node's key.
        """
        if not requests:
            return []
        waiter: asyncio.Future[list[Placed | errors.KranError]] = \
            asyncio.get_running_loop().create_future()
        self._queue.append((list(requests), waiter))
        if self._placer is None or self._placer.done():
            self._placer = asyncio.create_task(self._place_queued())
        return await waiter

    async def _place_queued(self) -> None:
        """Place what callers queued, batch after batch, until the queue is empty."""
        while self._queue:
            batch, self._queue = self._queue[:_BATCH_CALLS], self._queue[_BATCH_CALLS:]
            requests = [request for wanted, _ in batch for request in wanted]
            try:
                results = await self._place(requests)
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(exc)
                continue
            start = 0
            for wanted, waiter in batch:
                mine = results[start:start + len(wanted)]
                start += len(wanted)
                if not waiter.done():
                    waiter.set_result(mine)
                    continue
                # The caller went away: nobody will create these containers.
                for placed in mine:
                    if isinstance(placed, Placed):
                        try:
                            await self.release(placed.node.id, [placed.request.key])
                        except errors.KranError as exc:
                            log.warning("a reservation nobody wants is left behind", extra={
                                "node": placed.node.id, "container": placed.request.key,
                                "error": str(exc)})

    async def _place(self, requests: list[Request]) -> list[Placed | errors.KranError]:
        """Place one batch (see place()), on the watched view when there is one."""
        started = time.perf_counter()
        view = self.view if self.view is not None and self.view.synced else None
        results = await self._place_on(requests, view)
        if view is not None:
            # The view may lag etcd by a moment: what it refuses is tried again on a fresh read.
            again = [index for index, result in enumerate(results) if _maybe_stale(result)]
            if again:
                fresh = await self._place_on([requests[index] for index in again], None)
                for index, result in zip(again, fresh):
                    results[index] = result
        PLACEMENT_SECONDS.observe(time.perf_counter() - started)
        placed = sum(1 for result in results if isinstance(result, Placed))
        PLACEMENTS.labels("placed").inc(placed)
        if placed < len(results):
            PLACEMENTS.labels("refused").inc(len(results) - placed)
        return results

    async def _place_on(self, requests: list[Request], view: ClusterView | None
                        ) -> list[Placed | errors.KranError]:
        """Place requests on what view shows, or on what etcd holds now (view None)."""
        results: list[Placed | errors.KranError | None] = [None] * len(requests)
        if view is None:
            states, loads = await asyncio.gather(self.nodes.states(), self._loads())
            candidates = [Candidate.of(state, loads.get(state.id) or Load.read(state.id, None),
                                       order) for order, state in enumerate(states)]
        else:
            states = view.states()
            candidates = [Candidate.of(state, Load(view.summary(state.id)), order)
                          for order, state in enumerate(states)]
        kinds = self._kinds(requests, states)
        for kind in kinds:
            if kind.error is None:
                kind.eligible = [node for node in candidates
                                 if all(f.check(node) for f in kind.static)]
        await self._check_images([k for k in kinds if k.error is None and k.sample.image])
        for kind in kinds:
            if kind.error is not None:
                for index in kind.indices:
                    results[index] = _own(kind.error)

        pending = [kind for kind in kinds if kind.error is None]
        for round_ in range(ROUNDS):
            if round_:
                loads = await self._loads()
                for node in candidates:
                    node.load = loads.get(node.id) or Load.read(node.id, None)
            touched = self._assign(pending, candidates, requests, results)
            conflicted = await self._write(touched)
            retry = []
            for node, placed in touched.items():
                for index in placed:
                    if node.id in conflicted:
                        retry.append(index)
                    else:
                        results[index] = Placed(requests[index], node.state)
            if not retry:
                break
            log.info("allocations changed meanwhile; placing again", extra={
                "nodes": len(conflicted), "requests": len(retry), "round": round_ + 1})
            again = set(retry)
            for kind in pending:
                kind.indices = [i for i in kind.indices if i in again]
            pending = [kind for kind in pending if kind.indices]
        else:
            for kind in pending:
                for index in kind.indices:
                    results[index] = errors.Conflict(
                        "the cluster's allocations kept changing while placing; try again")
        return results  # type: ignore[return-value]

    def _kinds(self, requests: Sequence[Request], states: list[NodeState]) -> list[_Kind]:
        """Group requests into kinds, with their filters (or the error that refuses them)."""
        kinds: dict[tuple, _Kind] = {}
        for index, request in enumerate(requests):
            key = _kind_of(request)
            kind = kinds.get(key)
            if kind is None:
                kind = kinds[key] = _Kind(request, request.placement.strategy or self.strategy)
                try:
                    self._filters(kind, states)
                except errors.KranError as exc:
                    kind.error = exc
            kind.indices.append(index)
        return list(kinds.values())

    def _filters(self, kind: _Kind, states: list[NodeState]) -> None:
        request, placement = kind.sample, kind.sample.placement
        if kind.strategy not in strategies.STRATEGIES:
            raise errors.InvalidArgument(_bad_strategy(kind.strategy))
        if placement.reserve_nano_cpus < 0 or placement.reserve_memory_bytes < 0:
            raise errors.InvalidArgument("a reservation cannot be negative")
        static: list[Filter] = []
        if request.pinned:
            node = resolve_node(states, request.pinned)
            static.append(filters.Pinned(node.id, node.hostname))
        static += [filters.Ready(), filters.Active()]
        static += [filters.Satisfies(c) for c in constraints.parse_all(placement.constraints)]
        if request.nano_cpus_limit:
            static.append(filters.CpuLimit(request.nano_cpus_limit))
        if request.memory_limit:
            static.append(filters.MemoryLimit(request.memory_limit))
        kind.static = static
        if placement.reserve_nano_cpus:
            kind.dynamic.append(filters.CpuReservation(placement.reserve_nano_cpus))
        if placement.reserve_memory_bytes:
            kind.dynamic.append(filters.MemoryReservation(placement.reserve_memory_bytes))
        if request.ports:
            kind.dynamic.append(filters.PortsFree(request.ports))

    async def _check_images(self, kinds: list[_Kind]) -> None:
        """Keep, for each kind with an image, only the eligible nodes that hold it.

        Each candidate is asked once per image (see images.ImagePresence); a
        node whose agent could not say is not eligible, and the reason is kept.
        """
        askers: dict[str, dict[str, NodeState]] = {}
        for kind in kinds:
            askers.setdefault(kind.sample.image, {}).update(
                (node.id, node.state) for node in kind.eligible)
        images = list(askers)
        answers = await asyncio.gather(*(self.images.holders(image, askers[image].values())
                                         for image in images))
        found = dict(zip(images, answers))
        for kind in kinds:
            holders, failures = found[kind.sample.image]
            shown = shown_image(kind.sample.image)
            kind.static.append(filters.HasImage(shown, holders, failures))
            if kind.eligible and not holders and not failures:
                # No node asked has it at all: the caller may pull it (`kran run` does).
                kind.error = errors.NotFound(f"No such image: {shown}")
            kind.eligible = [node for node in kind.eligible if node.id in holders]

    def _assign(self, kinds: list[_Kind], candidates: list[Candidate],
                requests: Sequence[Request], results: list) -> dict[Candidate, list[int]]:
        """Place each kind's requests in memory; the requests each touched node took."""
        touched: dict[Candidate, list[int]] = {}
        for kind in kinds:
            reservation = kind.reservation
            pick = strategies.picker(kind.strategy, kind.eligible, kind.sample.spread_key,
                                     self.rng)
            refused = ""
            for index in kind.indices:
                node = None if refused else pick.pick(kind.fits)
                if node is None:
                    # Loads only grow while placing: the rest of the kind fits nowhere either.
                    refused = refused or filters.explain(
                        kind.static + kind.dynamic, candidates, bool(kind.sample.pinned))
                    results[index] = Unschedulable(refused)
                    continue
                node.load.add(requests[index].key, reservation)
                touched.setdefault(node, []).append(index)
        return touched

    async def _write(self, touched: dict[Candidate, list[int]]) -> set[str]:
        """Store each touched node's allocation; the ids of nodes whose key had changed."""
        limit = asyncio.Semaphore(_CONCURRENCY)
        conflicted: set[str] = set()

        async def write(node: Candidate) -> None:
            key, value = allocations.key(node.id), node.load.value()
            async with limit:
                try:
                    revision = await self.store.transaction([node.load.check()], {key: value})
                except errors.Conflict:
                    conflicted.add(node.id)
                    return
            if self.view is not None:
                self.view.wrote(key, value, revision)
        await asyncio.gather(*(write(node) for node in touched))
        return conflicted

    async def _loads(self) -> dict[str, Load]:
        """Every node's allocation, by node id (one read)."""
        entries = await self.store.list(allocations.PREFIX)
        return {entry.key[len(allocations.PREFIX):]: Load.read(
            entry.key[len(allocations.PREFIX):], entry) for entry in entries}

    # -- releasing and reading ---------------------------------------------

    async def release(self, node_id: str, keys: Iterable[str]) -> None:
        """Drop the reservations of these container ids on the node (idempotent)."""
        keys = list(keys)
        key = allocations.key(node_id)
        for _ in range(_RELEASE_RETRIES):
            entry = await self.store.get(key)
            if entry is None:
                return
            value = allocations.without(entry, keys)
            if value is None:
                return
            try:
                if value["containers"]:
                    await self.store.transaction([Check.unchanged(entry)], {key: value})
                else:
                    await self.store.transaction([Check.unchanged(entry)], {}, [key])
            except errors.Conflict:
                continue
            log.debug("reservations released", extra={"node": node_id, "containers": len(keys)})
            return
        raise errors.Conflict(f"the allocation of node {node_id} is being changed "
                              "concurrently; try again")

    async def allocation(self, node_id: str) -> nodes_pb2.NodeAllocation:
        """What the containers placed on node_id reserve there."""
        return Load.read(node_id, await self.store.get(allocations.key(node_id))).to_proto()

    async def allocations(self) -> dict[str, nodes_pb2.NodeAllocation]:
        """Every node's allocation, by node id (nodes without any are left out)."""
        return {node_id: load.to_proto() for node_id, load in (await self._loads()).items()}


def _own(error: errors.KranError) -> errors.KranError:
    """A copy of error for one caller (an exception object is raised by one task only)."""
    return type(error)(str(error))


def _maybe_stale(result: Placed | errors.KranError) -> bool:
    """Whether a refusal may come from a view that lags etcd (not an image's absence)."""
    if isinstance(result, errors.NotFound):
        return not str(result).startswith("No such image")
    return isinstance(result, errors.FailedPrecondition)


def _bad_strategy(strategy: str) -> str:
    return (f"invalid placement strategy {strategy!r}: use "
            f"{', '.join(strategies.STRATEGIES[:-1])} or {strategies.STRATEGIES[-1]}")
