"""Which nodes hold an image, as their agents say.

Nodes are asked concurrently (Images.Inspect): an answer means the node has
it, NotFound that it has not, any other failure that it cannot be told (the
node is then not eligible, and the reason goes into the scheduler's
message). A yes is remembered for a short while, so a busy cluster does not
ask every node for the same image at every placement; after that it is still
used for a while longer while the nodes are asked again in the background
(stale while revalidating), so that no placement waits on a thousand agents
at once. A no is never remembered, since a pull may fix it at any moment. A
node found without an image it was thought to hold (the agent's Create says
so) is forgotten.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from controller.agents import AgentPool
from controller.nodes import NodeState
from kran import errors
from kran.api.v1 import images_pb2

ASK_TIMEOUT = 5.0        # seconds an agent has to answer
REMEMBER = 30.0          # seconds a yes is used without asking again
STALE = 300.0            # seconds an older yes is still used while the node is asked again
_CONCURRENCY = 64        # agents asked at once


class ImagePresence:
    """Asks agents whether they hold images and remembers the yeses for a while."""

    def __init__(self, agents: AgentPool, remember: float = REMEMBER, stale: float = STALE) -> None:
        self.agents = agents
        self.remember = remember
        self.stale = stale
        self._known: dict[tuple[str, str], float] = {}   # (node id, image) -> seen at
        self._refreshing: dict[str, asyncio.Task] = {}  # image -> its background ask

    async def holders(self, image: str, nodes: Iterable[NodeState]
                      ) -> tuple[set[str], tuple[str, ...]]:
        """The ids of nodes that hold image, and "hostname: why" for those that could not say."""
        now = time.monotonic()
        found, unknown, aging = set(), [], []
        for node in nodes:
            seen = self._known.get((node.id, image))
            age = now - seen if seen is not None else None
            if age is not None and age < self.stale:
                found.add(node.id)
                if age >= self.remember:
                    aging.append(node)
            else:
                unknown.append(node)
        if aging and image not in self._refreshing:
            task = asyncio.create_task(self._ask(image, aging))
            self._refreshing[image] = task
            task.add_done_callback(lambda _: self._refreshing.pop(image, None))
        if unknown:
            found_now, failures = await self._ask(image, unknown)
            return found | found_now, failures
        return found, ()

    async def _ask(self, image: str, nodes: list[NodeState]) -> tuple[set[str], tuple[str, ...]]:
        """Ask nodes whether they hold image; remember the yeses, forget the noes."""
        now = time.monotonic()
        found = set()
        limit = asyncio.Semaphore(_CONCURRENCY)
        request = images_pb2.InspectImageRequest(reference=image)

        async def ask(node: NodeState) -> errors.KranError | None:
            stub = self.agents.images(node)
            async with limit:
                try:
                    await self.agents.call(node, lambda: stub.Inspect(request,
                                                                     timeout=ASK_TIMEOUT))
                except errors.KranError as exc:
                    return exc
            return None

        failures = []
        for node, outcome in zip(nodes, await asyncio.gather(*(ask(n) for n in nodes))):
            if outcome is None:
                found.add(node.id)
                self._known[(node.id, image)] = now
            else:
                self._known.pop((node.id, image), None)
                if not isinstance(outcome, errors.NotFound):
                    failures.append(f"{node.hostname}: {outcome}")
        return found, tuple(failures)

    def forget(self, node_id: str, image: str) -> None:
        """The node turned out not to hold image after all."""
        self._known.pop((node_id, image), None)
