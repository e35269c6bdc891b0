"""Per-container CPU, memory and pids from cgroups, as Prometheus metrics.

A custom collector: every scrape reads the cgroups of the containers that
run at that moment, so a removed container's series simply end.
Register it with prometheus_client.REGISTRY.register(ContainerCollector(manager)).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.containers.cgroup import container_cgroup
from agent.containers.stats import sample
from kran import errors

log = logging.getLogger(__name__)

LABELS = ("id", "name")
_LIST_ATTEMPTS = 3


def _families() -> tuple[CounterMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    return (CounterMetricFamily("kran_container_cpu_seconds", "CPU time the container's processes used",
                                labels=LABELS),
            GaugeMetricFamily("kran_container_memory_bytes",
                              "Memory the container uses, without inactive page cache (as docker stats)",
                              labels=LABELS),
            GaugeMetricFamily("kran_container_pids", "Processes and threads in the container", labels=LABELS))


class ContainerCollector:
    """Collects kran_container_cpu_seconds_total, kran_container_memory_bytes and kran_container_pids."""

    def __init__(self, manager: Any) -> None:
        """`manager` is the agent's ContainerManager (list(), pid(id), runtime.cgroup_parent)."""
        self.manager = manager

    def describe(self) -> Iterator[Metric]:
        """The families without samples (so registering reads no cgroup)."""
        yield from _families()

    def _records(self) -> list[Any]:
        # Scrapes run in the metrics server's thread while the event loop adds and removes
        # records; a dict changed during the copy is simply read again.
        for _ in range(_LIST_ATTEMPTS):
            try:
                return self.manager.list()
            except RuntimeError:
                continue
        return []

    def collect(self) -> Iterator[Metric]:
        """One sample per running container, labelled with its short id and name."""
        cpu, memory, pids = _families()
        parent = self.manager.runtime.cgroup_parent
        for record in self._records():
            try:
                pid = self.manager.pid(record.id)
            except errors.NotFound:  # removed since the list was taken
                continue
            if pid is None:
                continue
            try:
                figures = sample(container_cgroup(parent, record.id), pid)
            except OSError as exc:  # the container stopped while we read it
                log.debug("cannot read container cgroup", extra={"container": record.id, "error": str(exc)})
                continue
            labels = [record.id[:12], record.name]
            cpu.add_metric(labels, figures.cpu_usage_ns / 1e9)
            memory.add_metric(labels, figures.memory_usage)
            pids.add_metric(labels, figures.pids)
        yield from (cpu, memory, pids)
