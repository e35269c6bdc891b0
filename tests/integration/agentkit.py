"""A real kran-agent (with its controller) driven over gRPC, for the agent's integration tests."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc

from kran.api.v1 import containers_pb2 as pb
from kran.api.v1 import containers_pb2_grpc, images_pb2_grpc
from tests.integration.runtime.conftest import cgroup_dirs
from tests.procs import Agent, Processes, mounts_under, pid_alive, wait_until

CALL_TIMEOUT = 30


class AgentUnderTest:
    """A kran-agent process and stubs for its Containers and Images services."""

    def __init__(self, processes: Processes, state_dir: Path, controller: str, cgroup_parent: str) -> None:
        self.processes = processes
        self.state_dir = state_dir
        self.controller = controller
        self.cgroup_parent = cgroup_parent
        self.port = 0
        self.metrics_port = 0
        self.process: Agent | None = None
        self.start()

    def start(self) -> None:
        os.environ["KRAN_AGENT_CGROUP_PARENT"] = self.cgroup_parent
        try:
            kwargs = {"port": self.port, "metrics_port": self.metrics_port} if self.port else {}
            self.process = self.processes.agent(self.state_dir, self.controller, hostname="node-c", **kwargs)
        finally:
            del os.environ["KRAN_AGENT_CGROUP_PARENT"]
        self.port = int(self.process.address.rsplit(":", 1)[1])
        self.metrics_port = self.process.metrics_port
        self.channel = grpc.insecure_channel(self.process.address)
        self.containers = containers_pb2_grpc.ContainersStub(self.channel)
        self.images = images_pb2_grpc.ImagesStub(self.channel)

    def kill(self) -> None:
        """SIGKILL the agent (its containers keep running)."""
        self.channel.close()
        self.process.kill()

    def call(self, method: str, request, timeout: float = CALL_TIMEOUT):
        return getattr(self.containers, method)(request, timeout=timeout)

    def create(self, *cmd: str, name: str = "", **config) -> str:
        container_id = secrets.token_hex(32)
        request = pb.CreateContainerRequest(id=container_id, name=name or f"c-{container_id[:8]}",
                                            config=pb.ContainerConfig(image="busybox", cmd=list(cmd), **config))
        assert self.call("Create", request).state.status == "created"
        return container_id

    def inspect(self, container_id: str) -> pb.Container:
        return self.call("Inspect", pb.InspectContainerRequest(container=container_id))

    def wait(self, container_id: str, condition: str = "") -> int:
        return self.call("Wait", pb.WaitContainerRequest(container=container_id, condition=condition)).status_code

    def logs(self, container_id: str, **fields) -> bytes:
        request = pb.LogsRequest(container=container_id, **{"stdout": True, "stderr": True, **fields})
        return b"".join(e.data for e in self.containers.Logs(request, timeout=CALL_TIMEOUT))

    def bundle(self, container_id: str) -> Path:
        return self.state_dir / "runtime" / "containers" / container_id

    def shim_pid(self, container_id: str) -> int:
        return json.loads((self.bundle(container_id) / "state.json").read_text())["shim_pid"]

    def remove(self, container_id: str, shim_pid: int = 0) -> None:
        """rm -f the container and check nothing of it is left."""
        self.call("Remove", pb.RemoveContainerRequest(container=container_id, force=True))
        self.assert_gone(container_id, shim_pid)

    def assert_gone(self, container_id: str, shim_pid: int = 0) -> None:
        left = [str(p) for p in (self.bundle(container_id), self.state_dir / "containers" / container_id) if p.exists()]
        left += mounts_under(self.state_dir / "runtime" / "containers" / container_id)
        left += [str(p) for p in cgroup_dirs(self.cgroup_parent, container_id)]
        if shim_pid and pid_alive(shim_pid):
            left.append(f"shim {shim_pid}")
        assert not left, f"left behind by {container_id[:12]}: {left}"


class Attached:
    """An Attach stream in a thread: stdin goes in through send(), responses pile up."""

    def __init__(self, agent: AgentUnderTest, options: pb.AttachOptions) -> None:
        self._stdin: queue.Queue = queue.Queue()
        self._stdin.put(pb.AttachRequest(options=options))
        self.responses: list[pb.AttachResponse] = []
        self.error: grpc.RpcError | None = None
        self._call = agent.containers.Attach(self._requests(), timeout=CALL_TIMEOUT)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _requests(self) -> Iterator[pb.AttachRequest]:
        while (request := self._stdin.get()) is not None:
            yield request

    def _read(self) -> None:
        try:
            for response in self._call:
                self.responses.append(response)
        except grpc.RpcError as err:
            self.error = err

    def send(self, **part) -> None:
        self._stdin.put(pb.AttachRequest(**part))

    def close(self) -> None:
        self._stdin.put(None)

    def output(self) -> bytes:
        return b"".join(r.stdout + r.stderr for r in list(self.responses))

    def wait_output(self, wanted: bytes, timeout: float = 10) -> bytes:
        return wait_until(lambda: wanted in self.output() and self.output(), timeout, 0.02, f"{wanted!r}")

    def end(self, timeout: float = 20) -> pb.AttachResponse:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the attach stream did not end"
        self.close()
        if self.error is not None:
            raise self.error
        return self.responses[-1]


def kill_cgroup(path: Path) -> None:
    """After a failed test: SIGKILL what a container of ours still runs, then remove its cgroup."""
    for pid in (path / "cgroup.procs").read_text().split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    wait_until(lambda: not (path / "cgroup.procs").read_text().split(), 10, 0.05, f"{path} to empty")
    path.rmdir()
