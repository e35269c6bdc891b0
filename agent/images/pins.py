"""Blobs and layers that work in progress needs before any image names them.

A pull commits each layer blob as soon as it is verified and unpacks it
before the image is recorded; a push reads an image's blobs for minutes.
Meanwhile a concurrent rmi or prune must not collect them: the store's
garbage collection skips whatever is pinned here. Pins live in memory
only: after a crash nothing is in progress, and start-up collection removes
what an unfinished pull left.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable


class Pins:
    """Counted pins on blob digests and layer chain ids; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blobs: Counter[str] = Counter()
        self._chains: Counter[str] = Counter()

    def hold(self) -> Pin:
        """A new, empty set of pins; release() it when the work is done."""
        return Pin(self)

    def blobs(self) -> set[str]:
        """Every pinned blob digest."""
        with self._lock:
            return set(self._blobs)

    def chains(self) -> set[str]:
        """Every pinned layer chain id."""
        with self._lock:
            return set(self._chains)

    def _change(self, blobs: Iterable[str], chains: Iterable[str], step: int) -> None:
        with self._lock:
            for counter, keys in ((self._blobs, blobs), (self._chains, chains)):
                for key in keys:
                    counter[key] += step
                    if counter[key] <= 0:
                        del counter[key]


class Pin:
    """One piece of work's pins."""

    def __init__(self, pins: Pins) -> None:
        self._pins = pins
        self._blobs: list[str] = []
        self._chains: list[str] = []

    def add(self, blobs: Iterable[str] = (), chains: Iterable[str] = ()) -> None:
        """Pin more blobs and chains (pin before checking that they exist)."""
        blobs, chains = list(blobs), list(chains)
        self._pins._change(blobs, chains, 1)
        self._blobs += blobs
        self._chains += chains

    def release(self) -> None:
        """Let go of every pin taken through this Pin."""
        self._pins._change(self._blobs, self._chains, -1)
        self._blobs, self._chains = [], []
