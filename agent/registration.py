"""The agent's side of presence: register with a controller, heartbeat, report containers.

The loop never gives up: it fails over between the controllers it was
given, and while none answers it retries with a backoff; a heartbeat
answered NOT_FOUND (the lease expired, or the controllers' etcd was reset)
leads to a new registration under the same node id. Stopping the loop lets the lease run out, so the node shows Down
within the TTL.

While registered, a second task sends the containers' observed state with
Dispatcher.ReportContainers: all of them (`full`) right after each
registration, then each change as it comes, the newest per container, in
batches. A batch that fails is kept and sent again, so a short controller
outage loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from collections.abc import Callable, Sequence
from typing import Any

import grpc

import kran
from kran import errors
from kran.api.v1 import nodes_pb2, nodes_pb2_grpc
from kran.hostinfo import goarch, goos

log = logging.getLogger(__name__)

REGISTER_TIMEOUT = 10.0
BACKOFF_START = 0.5
BACKOFF_MAX = 5.0
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]
# Answers that mean this controller cannot serve now (down, unreachable, or cut off from
# etcd); another controller may. Any other answer would be the same from every controller.
_NOT_ANSWERING = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def memory_bytes(meminfo: str = "/proc/meminfo") -> int:
    """Total memory of this host from /proc/meminfo, 0 if it cannot be read."""
    try:
        with open(meminfo) as lines:
            for line in lines:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def describe_host(hostname: str, address: str, labels: dict[str, str]) -> nodes_pb2.NodeDescription:
    """The NodeDescription this agent reports."""
    return nodes_pb2.NodeDescription(
        hostname=hostname, address=address, cpus=cpu_count(), memory_bytes=memory_bytes(),
        os=goos(), architecture=goarch(), kernel_version=platform.release(),
        agent_version=kran.__version__, labels=labels)


class ContainerReports:
    """Container states waiting to be reported; put() never blocks, the newest per container wins."""

    def __init__(self, snapshot: Callable[[], list[nodes_pb2.ContainerReport]] = list) -> None:
        self.snapshot = snapshot
        self._pending: dict[str, nodes_pb2.ContainerReport] = {}
        self._ready = asyncio.Event()

    def put(self, report: nodes_pb2.ContainerReport) -> None:
        """Queue a container's new state (replacing one not sent yet)."""
        self._pending[report.id] = report
        self._ready.set()

    async def take(self) -> list[nodes_pb2.ContainerReport]:
        """Wait for reports and take them all."""
        await self._ready.wait()
        batch = list(self._pending.values())
        self._pending.clear()
        self._ready.clear()
        return batch

    def give_back(self, batch: list[nodes_pb2.ContainerReport]) -> None:
        """Queue a batch that could not be sent again, behind any newer report of the same container."""
        for report in batch:
            self._pending.setdefault(report.id, report)
        if self._pending:
            self._ready.set()

    def full(self) -> list[nodes_pb2.ContainerReport]:
        """Every container's state now; what was queued is in it."""
        self._pending.clear()
        self._ready.clear()
        return self.snapshot()


class Registration:
    """Keeps this node registered with the controllers, and its containers reported.

    Every call goes to the current controller; one that does not answer
    (UNAVAILABLE, DEADLINE_EXCEEDED) hands the call, and the calls after it,
    to the next controller in the list. The controllers share one etcd, so
    a lease granted through one is kept alive through any other.
    """

    def __init__(self, controllers: Sequence[str], node_id: str,
                 description: nodes_pb2.NodeDescription,
                 reports: ContainerReports | None = None) -> None:
        if not controllers:
            raise errors.InvalidArgument("no controller address given")
        self.controllers = list(controllers)
        self.node_id = node_id
        self.description = description
        self.reports = reports or ContainerReports()
        self.lease_id = 0
        self.registered = asyncio.Event()
        self._stopping = asyncio.Event()
        self._current = 0
        self._stubs: list[nodes_pb2_grpc.DispatcherStub] = []

    @property
    def controller(self) -> str:
        """The controller the next call goes to."""
        return self.controllers[self._current]

    def stop(self) -> None:
        """Make run() return at its next wait."""
        self._stopping.set()

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless stopped meanwhile; False once stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            return True
        return False

    async def _call(self, method: str, request: Any, timeout: float) -> Any:
        """Call the Dispatcher's method, starting with the current controller and failing
        over to the next while one does not answer; the last error once every one failed."""
        tried = 0
        while True:
            index = self._current
            try:
                return await getattr(self._stubs[index], method)(request, timeout=timeout)
            except grpc.aio.AioRpcError as err:
                if err.code() not in _NOT_ANSWERING:
                    raise
                self._fail_over(index, err)
                tried += 1
                if tried == len(self.controllers):
                    raise

    def _fail_over(self, index: int, err: grpc.aio.AioRpcError) -> None:
        """Move on from the controller at index, unless a concurrent call already has."""
        if index != self._current or len(self.controllers) == 1:
            return
        self._current = (index + 1) % len(self.controllers)
        log.warning("controller does not answer; failing over",
                    extra={"node": self.node_id, "controller": self.controllers[index],
                           "next": self.controller, "code": err.code().name})

    async def run(self) -> None:
        """Register and heartbeat until stop()."""
        channels = [grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
                    for address in self.controllers]
        self._stubs = [nodes_pb2_grpc.DispatcherStub(channel) for channel in channels]
        try:
            while not self._stopping.is_set():
                period = await self._register()
                if period is None:
                    return
                sender = asyncio.create_task(self._send_reports())
                try:
                    await self._heartbeat(period)
                finally:
                    sender.cancel()
                    await asyncio.gather(sender, return_exceptions=True)
        finally:
            await asyncio.gather(*(channel.close() for channel in channels))

    async def _register(self) -> float | None:
        """Register, retrying with backoff; the heartbeat period, None if stopped."""
        backoff, failures = BACKOFF_START, 0
        request = nodes_pb2.RegisterRequest(node_id=self.node_id, description=self.description)
        while not self._stopping.is_set():
            try:
                reply = await self._call("Register", request, REGISTER_TIMEOUT)
            except grpc.aio.AioRpcError as err:
                failures += 1
                # Say it the first time and then now and again, not at every retry.
                if failures == 1 or failures % 10 == 0:
                    log.warning("cannot register with the controller; retrying",
                                extra={"node": self.node_id, "controller": self.controller,
                                       "code": err.code().name, "error": err.details(),
                                       "attempts": failures})
                if not await self._pause(backoff):
                    return None
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            self.lease_id = reply.lease_id
            self.registered.set()
            log.info("registered with the controller",
                     extra={"node": self.node_id, "controller": self.controller,
                            "lease": reply.lease_id, "ttl": reply.ttl_seconds})
            return max(reply.heartbeat_period_ms / 1000, 0.1)
        return None

    async def _heartbeat(self, period: float) -> None:
        """Heartbeat every period until the lease is lost or the loop is stopped."""
        request = nodes_pb2.HeartbeatRequest(node_id=self.node_id, lease_id=self.lease_id)
        failing = False
        while await self._pause(period):
            try:
                await self._call("Heartbeat", request, period)
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.NOT_FOUND:
                    log.warning("lease lost; registering again",
                                extra={"node": self.node_id, "error": err.details()})
                    self.registered.clear()
                    return
                if not failing:
                    # The lease may outlive a short controller outage: keep heartbeating.
                    log.warning("heartbeat failed; retrying",
                                extra={"node": self.node_id, "controller": self.controller,
                                       "code": err.code().name, "error": err.details()})
                failing = True
                continue
            if failing:
                log.info("heartbeats are getting through again", extra={"node": self.node_id})
            failing = False

    async def _send_reports(self) -> None:
        """A full report, then each batch of changes, retrying with backoff, until cancelled."""
        full, backoff, failures = True, BACKOFF_START, 0
        while True:
            batch = self.reports.full() if full else await self.reports.take()
            request = nodes_pb2.ReportContainersRequest(node_id=self.node_id, containers=batch, full=full)
            try:
                await self._call("ReportContainers", request, REGISTER_TIMEOUT)
            except grpc.aio.AioRpcError as err:
                failures += 1
                if failures == 1 or failures % 10 == 0:
                    log.warning("cannot report containers; retrying",
                                extra={"node": self.node_id, "code": err.code().name, "error": err.details(),
                                       "attempts": failures})
                if not full:
                    self.reports.give_back(batch)
                if not await self._pause(backoff):
                    return
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            full, backoff, failures = False, BACKOFF_START, 0
