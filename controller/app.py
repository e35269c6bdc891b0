"""A running controller: etcd (embedded or not), the API server, metrics."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from controller.agents import AgentPool
from controller.api.containers import ContainersService
from controller.api.events import EventsService
from controller.api.images import ImagesForwarder
from controller.api.nodes import DispatcherService, NodesService
from controller.api.services import ServicesService
from controller.api.system import ControllerFacts, SystemService
from controller.config import ControllerConfig
from controller.container_filters import STATUSES
from controller.containers import ContainerStore
from controller.creation import Creator
from controller.embedded_etcd import EmbeddedEtcd
from controller.events import EventLog, PresenceEvents
from controller.leader import Leadership, identity_for
from controller.metrics import CONTAINERS, NODES
from controller.nodes import NodeRegistry
from controller.scheduler import Scheduler
from controller.services.jobs import TaskContainers
from controller.services.reconciler import Reconciler
from controller.services.store import ServiceStore
from controller.store import EtcdStore
from kran import defaults, errors
from kran.api.v1 import (containers_pb2, containers_pb2_grpc, events_pb2, events_pb2_grpc,
                         images_pb2, images_pb2_grpc, nodes_pb2, nodes_pb2_grpc, services_pb2,
                         services_pb2_grpc, system_pb2, system_pb2_grpc)
from kran.metrics import UP, serve_metrics
from kran.server import start_server

log = logging.getLogger(__name__)

GAUGE_INTERVAL = 2.0
STOP_GRACE = 5.0


def _service(module: object, name: str) -> str:
    return module.DESCRIPTOR.services_by_name[name].full_name  # type: ignore[attr-defined]


async def _keep_gauges(nodes: NodeRegistry, containers: ContainerStore) -> None:
    """Keep kran_nodes{status} and kran_containers{status} current.

    etcd outages are logged by the store.
    """
    while True:
        try:
            states = await nodes.states()
            counts = await containers.count_by_status()
        except errors.Unavailable:
            pass
        else:
            ready = sum(1 for node in states if node.ready)
            NODES.labels("ready").set(ready)
            NODES.labels("down").set(len(states) - ready)
            for status in STATUSES:
                CONTAINERS.labels(status).set(counts[status])
        await asyncio.sleep(GAUGE_INTERVAL)


async def run(config: ControllerConfig) -> None:
    """Run the controller until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    etcd = None
    if config.etcd:
        endpoints = config.etcd
    else:
        etcd = EmbeddedEtcd(Path(config.state_dir), config.etcd_client_port, config.etcd_peer_port)
        endpoints = [etcd.endpoint]
    store = EtcdStore(endpoints)
    agents = AgentPool()
    server = None
    gauge = None
    presence = None
    leading = None
    watching = None
    try:
        if etcd is not None:
            etcd.start()
            version = await etcd.wait_ready(store)
            log.info("embedded etcd is ready", extra={"etcd": etcd.endpoint, "version": version})
        else:
            try:
                version = (await store.status()).version
                log.info("connected to etcd", extra={"etcd": ",".join(endpoints),
                                                     "version": version})
            except errors.Unavailable as exc:
                log.warning(f"{exc}; serving anyway and retrying on each request")
        events = EventLog(store)
        nodes = NodeRegistry(store, config.node_ttl, events)
        containers = ContainerStore(store, events)
        scheduler = Scheduler(store, nodes, agents, config.strategy)
        creator = Creator(containers, nodes, agents, scheduler)
        services = ServiceStore(store)
        task_containers = TaskContainers(creator)
        leadership = Leadership(store, identity_for(config.listen), config.leader_ttl)
        facts = ControllerFacts(address=config.listen, etcd_endpoints=endpoints,
                                embedded_etcd=etcd is not None)
        server = await start_server(config.listen, [
            (nodes_pb2_grpc.add_NodesServicer_to_server, NodesService(nodes, scheduler),
             _service(nodes_pb2, "Nodes")),
            (nodes_pb2_grpc.add_DispatcherServicer_to_server, DispatcherService(nodes, containers),
             _service(nodes_pb2, "Dispatcher")),
            (images_pb2_grpc.add_ImagesServicer_to_server, ImagesForwarder(nodes, agents, events),
             _service(images_pb2, "Images")),
            (events_pb2_grpc.add_EventsServicer_to_server, EventsService(store),
             _service(events_pb2, "Events")),
            (containers_pb2_grpc.add_ContainersServicer_to_server,
             ContainersService(containers, nodes, agents, creator),
             _service(containers_pb2, "Containers")),
            (services_pb2_grpc.add_ServicesServicer_to_server,
             ServicesService(services, nodes, agents, task_containers, events),
             _service(services_pb2, "Services")),
            (system_pb2_grpc.add_SystemServicer_to_server,
             SystemService(facts, store, nodes, agents, containers),
             _service(system_pb2, "System")),
        ])
        if config.metrics_addr:
            serve_metrics(config.metrics_addr, defaults.CONTROLLER_METRICS_PORT)
        gauge = asyncio.create_task(_keep_gauges(nodes, containers))
        presence = asyncio.create_task(PresenceEvents(store, events).run())
        watching = asyncio.create_task(scheduler.run())
        leading = asyncio.create_task(leadership.run(lambda: Reconciler(
            store, services, scheduler, task_containers, lambda: leadership.fence,
            events).run()))
        UP.labels("controller").set(1)
        log.info("controller serving", extra={"listen": config.listen,
                                              "metrics": config.metrics_addr or "off",
                                              "etcd": ",".join(endpoints),
                                              "embedded_etcd": etcd is not None,
                                              "node_ttl": config.node_ttl})
        await stop.wait()
        log.info("stopping controller")
    finally:
        UP.labels("controller").set(0)
        if gauge is not None:
            gauge.cancel()
        if presence is not None:
            presence.cancel()
        if watching is not None:
            watching.cancel()
        if leading is not None:
            leading.cancel()
            await asyncio.gather(leading, return_exceptions=True)
        if server is not None:
            await server.stop(STOP_GRACE)
        await agents.close()
        await store.close()
        if etcd is not None:
            await etcd.stop()
