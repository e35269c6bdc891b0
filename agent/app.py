"""The agent process once its forkserver runs: services, registration, metrics, until stopped.

agent/main.py starts the forkserver before this module (and grpc with it)
is imported. A graceful stop leaves the containers running: their shims
outlive the agent, and the next agent re-adopts them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from prometheus_client import REGISTRY

from agent import config
from agent.build.builder import Builder
from agent.config import AgentConfig
from agent.containers.manager import ContainerManager
from agent.containers.metrics import ContainerCollector
from agent.containers.service import ContainersService
from agent.images.service import ImagesService
from agent.images.store import ImageStore
from agent.metrics import keep_container_gauges, keep_image_gauges
from agent.registration import ContainerReports, Registration, describe_host
from agent.runtime.forkserver import ForkServer
from agent.runtime.runtime import Runtime
from agent.service import AgentService
from kran import defaults, errors, logs
from kran.api.v1 import containers_pb2, containers_pb2_grpc, images_pb2, images_pb2_grpc, system_pb2, system_pb2_grpc
from kran.metrics import UP, serve_metrics
from kran.server import start_server

log = logging.getLogger("agent")

STOP_GRACE = 5.0


def _service_name(descriptor, name: str) -> str:
    return descriptor.services_by_name[name].full_name


async def run(cfg: AgentConfig, forkserver: ForkServer) -> None:
    """Run the agent until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    node_id = config.load_node_id(cfg.state_dir)
    store = ImageStore(cfg.state_dir / "images")
    runtime = Runtime(cfg.state_dir / "runtime", forkserver, cfg.cgroup_parent)
    reports = ContainerReports()
    manager = ContainerManager(cfg.state_dir, store, runtime, node_id=node_id, node_name=cfg.hostname,
                               report=reports.put)
    reports.snapshot = manager.snapshot
    await manager.recover()
    server = await start_server(cfg.listen, [
        (images_pb2_grpc.add_ImagesServicer_to_server,
         ImagesService(store, cfg.registry, Builder(store, runtime, cfg.state_dir / "build")),
         _service_name(images_pb2.DESCRIPTOR, "Images")),
        (containers_pb2_grpc.add_ContainersServicer_to_server, ContainersService(manager),
         _service_name(containers_pb2.DESCRIPTOR, "Containers")),
        (system_pb2_grpc.add_AgentServicer_to_server, AgentService(node_id, cfg.state_dir, store),
         _service_name(system_pb2.DESCRIPTOR, "Agent")),
    ])
    registration = Registration(cfg.controllers, node_id,
                                describe_host(cfg.hostname, cfg.advertise_addr, cfg.labels), reports)
    tasks: list[asyncio.Task[None]] = []
    try:
        if cfg.metrics_addr:
            REGISTRY.register(ContainerCollector(manager))
            serve_metrics(cfg.metrics_addr, defaults.AGENT_METRICS_PORT)
        tasks = [asyncio.create_task(registration.run()),
                 asyncio.create_task(keep_image_gauges(store)),
                 asyncio.create_task(keep_container_gauges(manager.counts))]
        UP.labels("agent").set(1)
        log.info("agent serving", extra={"node": node_id, "listen": cfg.listen,
                                         "advertise": cfg.advertise_addr,
                                         "controller": cfg.controller,
                                         "metrics": cfg.metrics_addr or "off",
                                         "state_dir": str(cfg.state_dir),
                                         "containers": len(manager.list())})
        await stop.wait()
        log.info("stopping agent; containers keep running", extra={"node": node_id})
    finally:
        UP.labels("agent").set(0)
        registration.stop()
        for task in tasks[1:]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop(STOP_GRACE)
        await manager.close()
        store.close()


def main(argv: list[str] | None, forkserver: ForkServer) -> int:
    """Parse flags and run the agent until it is stopped; returns the exit status."""
    try:
        cfg = config.parse(argv)
    except errors.KranError as exc:
        print(f"kran-agent: {exc}", file=sys.stderr)
        return 2
    logs.setup(cfg.log_level)
    try:
        asyncio.run(run(cfg, forkserver))
    except (OSError, errors.KranError) as exc:
        log.error(f"cannot start the agent: {exc}")
        return 1
    return 0
