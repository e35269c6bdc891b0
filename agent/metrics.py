"""The agent's own metrics (beside kran.metrics' kran_up and RPC histograms)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import Gauge

from agent.images.store import ImageStore

log = logging.getLogger(__name__)

IMAGES = Gauge("kran_images", "Images in this node's store")
IMAGE_BYTES = Gauge("kran_image_bytes", "Bytes of the blobs in this node's image store")

REFRESH_INTERVAL = 5.0


async def keep_image_gauges(store: ImageStore, interval: float = REFRESH_INTERVAL) -> None:
    """Refresh kran_images and kran_image_bytes from the store until cancelled.

    This runs on the event loop, the thread that owns the store, rather than
    in the scrape handler's thread.
    """
    while True:
        try:
            count, size = store.stats()
        except Exception:  # noqa: BLE001 - a metrics refresh must not stop the agent
            log.exception("cannot read image store stats")
        else:
            IMAGES.set(count)
            IMAGE_BYTES.set(size)
        await asyncio.sleep(interval)


CONTAINERS = Gauge("kran_containers", "Containers on this node, by state", ["state"])
CONTAINER_STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
CONTAINER_REFRESH_INTERVAL = 1.0


async def keep_container_gauges(counts: Callable[[], dict[str, int]],
                                interval: float = CONTAINER_REFRESH_INTERVAL) -> None:
    """Refresh kran_containers{state} from counts() (the manager's) until cancelled."""
    while True:
        current = counts()
        for state in {*CONTAINER_STATES, *current}:
            CONTAINERS.labels(state).set(current.get(state, 0))
        await asyncio.sleep(interval)
