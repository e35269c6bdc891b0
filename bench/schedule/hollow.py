"""Hollow nodes: many simulated agents in one process, as Kubernetes' hollow nodes.

Each hollow node registers with the controller under its own node id and
address (one loopback port per node, all served by one gRPC server),
heartbeats like a real agent, and answers the agent calls the controller
makes to place and run containers — Images.Inspect, Containers.Create,
Start, Stop, Kill, Remove — with a fake runtime that only keeps records.
So the controller, etcd and the scheduler do all of their real work while
no container is ever started.

    python -m bench.schedule.hollow --controller 127.0.0.1:7640 --nodes 1000
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import secrets
import signal
import string

import grpc

from kran.api.v1 import (containers_pb2, containers_pb2_grpc, images_pb2, images_pb2_grpc,
                         nodes_pb2, nodes_pb2_grpc)

log = logging.getLogger("hollow")

IMAGE_ID = "sha256:" + hashlib.sha256(b"hollow busybox").hexdigest()
REGISTER_CONCURRENCY = 64
_ID_CHARS = string.ascii_lowercase + string.digits


def node_id() -> str:
    """A node id as agents make them: 25 lowercase letters and digits."""
    return "".join(secrets.choice(_ID_CHARS) for _ in range(25))


class FakeRuntime(containers_pb2_grpc.ContainersServicer):
    """The container calls the controller forwards, answered from memory."""

    def __init__(self) -> None:
        self.containers: dict[str, containers_pb2.Container] = {}

    async def _change(self, container_id: str, status: str,
                      context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        container = self.containers.get(container_id)
        if container is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"No such container: {container_id}")
        container.state.status = status
        container.state.sequence += 1
        return container

    async def Create(self, request, context):  # noqa: N802 - gRPC method names
        container = containers_pb2.Container(
            id=request.id, name=request.name, config=request.config, image_id=IMAGE_ID,
            path=(list(request.config.entrypoint) + list(request.config.cmd) or ["sh"])[0],
            args=(list(request.config.entrypoint) + list(request.config.cmd))[1:])
        container.created.GetCurrentTime()
        container.state.status = "created"
        container.state.sequence = 1
        self.containers[request.id] = container
        return container

    async def Start(self, request, context):  # noqa: N802
        container = await self._change(request.container, "running", context)
        container.state.started_at.GetCurrentTime()
        container.state.pid = 1
        return container

    async def Stop(self, request, context):  # noqa: N802
        container = await self._change(request.container, "exited", context)
        container.state.finished_at.GetCurrentTime()
        container.state.exit_code = 143
        return container

    async def Kill(self, request, context):  # noqa: N802
        container = await self._change(request.container, "exited", context)
        container.state.exit_code = 137
        return container

    async def Remove(self, request, context):  # noqa: N802
        if self.containers.pop(request.container, None) is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"No such container: {request.container}")
        return containers_pb2.RemoveContainerResponse()


class FakeImages(images_pb2_grpc.ImagesServicer):
    """Every hollow node holds busybox (so the image filter passes everywhere)."""

    async def Inspect(self, request, context):  # noqa: N802
        return images_pb2.Image(id=IMAGE_ID, repo_tags=["busybox:latest"])


class HollowFleet:
    """n hollow nodes registered with controller, heartbeating until stopped."""

    def __init__(self, controller: str, count: int, prefix: str = "hollow") -> None:
        self.controller = controller
        self.count = count
        self.prefix = prefix
        self.server = grpc.aio.server()
        self.ports: list[int] = []
        self.runtime = FakeRuntime()

    async def start(self) -> None:
        """Serve the agent API on one port per node and register every node."""
        containers_pb2_grpc.add_ContainersServicer_to_server(self.runtime, self.server)
        images_pb2_grpc.add_ImagesServicer_to_server(FakeImages(), self.server)
        self.ports = [self.server.add_insecure_port("127.0.0.1:0") for _ in range(self.count)]
        await self.server.start()

    async def run(self, stop: asyncio.Event) -> None:
        """Register the nodes, then heartbeat each at the period the controller asks."""
        channel = grpc.aio.insecure_channel(self.controller)
        dispatcher = nodes_pb2_grpc.DispatcherStub(channel)
        limit = asyncio.Semaphore(REGISTER_CONCURRENCY)

        async def node(index: int, port: int) -> None:
            identity = node_id()
            description = nodes_pb2.NodeDescription(
                hostname=f"{self.prefix}-{index:04d}", address=f"127.0.0.1:{port}", cpus=8,
                memory_bytes=32 << 30, os="linux", architecture="x86_64",
                agent_version="hollow", labels={"zone": f"z{index % 3}"})
            while not stop.is_set():
                async with limit:
                    reply = await dispatcher.Register(nodes_pb2.RegisterRequest(
                        node_id=identity, description=description), timeout=30)
                period = reply.heartbeat_period_ms / 1000
                # Spread the heartbeats over the period instead of sending them in bursts.
                await asyncio.sleep(period * (index % 97) / 97)
                while not stop.is_set():
                    try:
                        await dispatcher.Heartbeat(nodes_pb2.HeartbeatRequest(
                            node_id=identity, lease_id=reply.lease_id), timeout=10)
                    except grpc.aio.AioRpcError as err:
                        if err.code() == grpc.StatusCode.NOT_FOUND:
                            break  # register again
                        log.warning("heartbeat of %s failed: %s", description.hostname, err.code())
                    try:
                        await asyncio.wait_for(stop.wait(), period)
                    except asyncio.TimeoutError:
                        pass

        try:
            await asyncio.gather(*(node(i, port) for i, port in enumerate(self.ports, 1)))
        finally:
            await channel.close()
            await self.server.stop(1)


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    fleet = HollowFleet(args.controller, args.nodes, args.prefix)
    await fleet.start()
    print(f"serving {args.nodes} hollow nodes", flush=True)
    await fleet.run(stop)


def main() -> None:
    """Run a hollow fleet until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.schedule.hollow", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--controller", required=True, help="controller host:port")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--prefix", default="hollow", help="hostname prefix")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
