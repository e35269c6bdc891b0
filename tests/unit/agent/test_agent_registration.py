"""What the agent reports about its host, the queue of container reports, and failing over
between controllers (against small in-process Dispatcher servers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from agent.registration import ContainerReports, Registration, cpu_count, describe_host, memory_bytes
from kran import errors
from kran.api.v1 import containers_pb2, nodes_pb2, nodes_pb2_grpc
from tests.procs import free_port


def test_memory_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemFree:  10 kB\nMemTotal:       2048 kB\n")
    assert memory_bytes(str(meminfo)) == 2048 * 1024
    assert memory_bytes(str(tmp_path / "missing")) == 0
    assert memory_bytes() > 0


def test_describe_host() -> None:
    desc = describe_host("h1", "10.0.0.1:7641", {"zone": "a"})
    assert desc.hostname == "h1" and desc.address == "10.0.0.1:7641"
    assert desc.cpus == cpu_count() >= 1
    assert desc.os == "linux" and desc.architecture in ("amd64", "arm64")
    assert desc.kernel_version and desc.agent_version and dict(desc.labels) == {"zone": "a"}


def test_container_reports_keep_the_newest_per_container() -> None:
    def report(cid: str, sequence: int, removed: bool = False) -> nodes_pb2.ContainerReport:
        return nodes_pb2.ContainerReport(id=cid, state=containers_pb2.ContainerState(sequence=sequence),
                                         removed=removed)

    async def scenario() -> None:
        reports = ContainerReports(snapshot=lambda: [report("a", 9)])
        reports.put(report("a", 1))
        reports.put(report("b", 1))
        reports.put(report("a", 2))
        batch = await reports.take()
        assert [(r.id, r.state.sequence) for r in batch] == [("a", 2), ("b", 1)]
        reports.put(report("b", 2, removed=True))
        reports.give_back(batch)  # the send failed; b's newer report stays
        batch = await asyncio.wait_for(reports.take(), 1)
        assert sorted((r.id, r.state.sequence, r.removed) for r in batch) == [("a", 2, False), ("b", 2, True)]
        reports.put(report("c", 1))
        assert [r.id for r in reports.full()] == ["a"]  # the snapshot holds everything
        waiting = asyncio.create_task(reports.take())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        waiting.cancel()
    asyncio.run(scenario())


class Dispatcher(nodes_pb2_grpc.DispatcherServicer):
    """A controller's Dispatcher that records what reached it; `lose_lease` answers heartbeats NOT_FOUND."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.reported: list[str] = []
        self.lose_lease = False

    async def Register(self, request: nodes_pb2.RegisterRequest,
                       context: grpc.aio.ServicerContext) -> nodes_pb2.RegisterResponse:
        self.calls.append("Register")
        self.lose_lease = False
        return nodes_pb2.RegisterResponse(lease_id=7, ttl_seconds=1, heartbeat_period_ms=50)

    async def Heartbeat(self, request: nodes_pb2.HeartbeatRequest,
                        context: grpc.aio.ServicerContext) -> nodes_pb2.HeartbeatResponse:
        self.calls.append("Heartbeat")
        if self.lose_lease:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no live registration")
        return nodes_pb2.HeartbeatResponse()

    async def ReportContainers(self, request: nodes_pb2.ReportContainersRequest,
                               context: grpc.aio.ServicerContext) -> nodes_pb2.ReportContainersResponse:
        self.calls.append("ReportContainers")
        self.reported += [report.id for report in request.containers]
        return nodes_pb2.ReportContainersResponse()


async def serve(dispatcher: Dispatcher) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    nodes_pb2_grpc.add_DispatcherServicer_to_server(dispatcher, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_registration_fails_over_to_the_controllers_that_answer() -> None:
    async def scenario() -> None:
        first, second = Dispatcher(), Dispatcher()
        server_a, address_a = await serve(first)
        server_b, address_b = await serve(second)
        dead = f"127.0.0.1:{free_port()}"  # nothing listens there
        reports = ContainerReports(snapshot=lambda: [nodes_pb2.ContainerReport(id="c1")])
        registration = Registration([dead, address_a, address_b], "n" * 25,
                                    describe_host("h1", "10.0.0.1:7641", {}), reports)
        running = asyncio.create_task(registration.run())
        try:
            await asyncio.wait_for(registration.registered.wait(), 5)
            assert registration.controller == address_a and "Register" in first.calls
            await until(lambda: "c1" in first.reported and "Heartbeat" in first.calls,
                        "the full report and heartbeats on the first live controller")
            await server_a.stop(None)
            await until(lambda: "Heartbeat" in second.calls, "heartbeats on the second controller")
            assert "Register" not in second.calls  # the lease is shared: no new registration
            assert registration.controller == address_b
            reports.put(nodes_pb2.ContainerReport(id="c2"))
            await until(lambda: "c2" in second.reported, "a report on the second controller")
        finally:
            registration.stop()
            await asyncio.wait_for(running, 5)
            await server_b.stop(None)
    asyncio.run(scenario())


def test_a_lost_lease_registers_again_on_the_same_controller() -> None:
    async def scenario() -> None:
        first, second = Dispatcher(), Dispatcher()
        server_a, address_a = await serve(first)
        server_b, address_b = await serve(second)
        registration = Registration([address_a, address_b], "n" * 25,
                                    describe_host("h1", "10.0.0.1:7641", {}))
        running = asyncio.create_task(registration.run())
        try:
            await until(lambda: "Heartbeat" in first.calls, "heartbeats")
            first.lose_lease = True  # an answer, not silence: no reason to fail over
            await until(lambda: first.calls.count("Register") == 2, "a second registration")
            assert second.calls == [] and registration.controller == address_a
        finally:
            registration.stop()
            await asyncio.wait_for(running, 5)
            await server_a.stop(None)
            await server_b.stop(None)
    asyncio.run(scenario())


def test_registration_needs_a_controller() -> None:
    with pytest.raises(errors.InvalidArgument, match="no controller"):
        Registration([], "n" * 25, describe_host("h1", "10.0.0.1:7641", {}))
