"""The System service: versions and a summary of the cluster."""

from __future__ import annotations

import asyncio
import logging
import platform
from dataclasses import dataclass

import grpc

import kran
from controller.agents import AgentPool
from controller.containers import ContainerStore
from controller.leader import current_leader
from controller.nodes import NodeRegistry, NodeState
from controller.store import Store
from kran import errors
from kran.api.v1 import system_pb2, system_pb2_grpc
from kran.hostinfo import goarch, goos

log = logging.getLogger(__name__)

AGENT_INFO_TIMEOUT = 5.0


@dataclass(frozen=True)
class ControllerFacts:
    """What Info reports about this controller's own setup."""

    address: str
    etcd_endpoints: list[str]
    embedded_etcd: bool


class SystemService(system_pb2_grpc.SystemServicer):
    """kran.api.v1.System on the controller."""

    def __init__(self, facts: ControllerFacts, store: Store, nodes: NodeRegistry,
                 agents: AgentPool, containers: ContainerStore) -> None:
        self.facts = facts
        self.store = store
        self.nodes = nodes
        self.agents = agents
        self.containers = containers

    async def Version(self, request: system_pb2.VersionRequest,
                      context: grpc.aio.ServicerContext) -> system_pb2.VersionResponse:
        try:
            etcd_version = (await self.store.status()).version
        except errors.Unavailable:
            etcd_version = ""  # the version of everything else is still worth telling
        return system_pb2.VersionResponse(
            version=kran.__version__, api_version=kran.API_VERSION,
            python_version=platform.python_version(), os=goos(), architecture=goarch(),
            kernel_version=platform.release(), etcd_version=etcd_version)

    async def Info(self, request: system_pb2.InfoRequest,
                   context: grpc.aio.ServicerContext) -> system_pb2.InfoResponse:
        states, leader = await asyncio.gather(self.nodes.states(), current_leader(self.store))
        ready = [node for node in states if node.ready]
        counts = await self.containers.count_by_status()
        images = await asyncio.gather(*(self._image_count(node) for node in ready))
        # As dockerd counts: a restarting container is running, paused ones apart.
        running = counts["running"] + counts["restarting"]
        total = sum(counts.values())
        return system_pb2.InfoResponse(
            controller_address=self.facts.address,
            etcd_endpoints=self.facts.etcd_endpoints,
            embedded_etcd=self.facts.embedded_etcd,
            nodes=len(states), nodes_ready=len(ready), nodes_down=len(states) - len(ready),
            containers=total, containers_running=running, containers_paused=counts["paused"],
            containers_stopped=total - running - counts["paused"],
            images=sum(images), server_version=kran.__version__, leader=leader)

    async def _image_count(self, node: NodeState) -> int:
        """Images on node, 0 (and a warning) if its agent does not answer."""
        try:
            info = await self.agents.call(node, lambda: self.agents.agent(node).Info(
                system_pb2.AgentInfoRequest(), timeout=AGENT_INFO_TIMEOUT))
        except errors.KranError as exc:
            log.warning("no image count from node", extra={"node": node.id, "error": str(exc)})
            return 0
        return info.images
