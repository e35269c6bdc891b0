"""The Nodes service (for users) and the Dispatcher service (for agents)."""

from __future__ import annotations

import asyncio

import grpc

from controller.containers import ContainerStore
from controller.nodes import NodeRegistry, NodeState
from controller.scheduler import Scheduler
from kran.api.v1 import nodes_pb2, nodes_pb2_grpc


class NodesService(nodes_pb2_grpc.NodesServicer):
    """kran.api.v1.Nodes: list, inspect, update and remove the cluster's nodes."""

    def __init__(self, nodes: NodeRegistry, scheduler: Scheduler) -> None:
        self.nodes = nodes
        self.scheduler = scheduler

    async def _shown(self, node: NodeState) -> nodes_pb2.Node:
        shown = node.to_proto()
        shown.allocated.CopyFrom(await self.scheduler.allocation(node.id))
        return shown

    async def List(self, request: nodes_pb2.ListNodesRequest,
                   context: grpc.aio.ServicerContext) -> nodes_pb2.ListNodesResponse:
        states, allocated = await asyncio.gather(self.nodes.states(),
                                                 self.scheduler.allocations())
        shown = []
        for node in states:
            message = node.to_proto()
            if node.id in allocated:
                message.allocated.CopyFrom(allocated[node.id])
            shown.append(message)
        return nodes_pb2.ListNodesResponse(nodes=shown)

    async def Inspect(self, request: nodes_pb2.InspectNodeRequest,
                      context: grpc.aio.ServicerContext) -> nodes_pb2.Node:
        return await self._shown(await self.nodes.resolve(request.node))

    async def Update(self, request: nodes_pb2.UpdateNodeRequest,
                     context: grpc.aio.ServicerContext) -> nodes_pb2.Node:
        availability = (nodes_pb2.NodeAvailability.Name(request.availability)
                        .removeprefix("NODE_AVAILABILITY_") if request.availability_set else None)
        updated = await self.nodes.update(request.node, availability, dict(request.label_add),
                                          list(request.label_rm))
        return await self._shown(updated)

    async def Remove(self, request: nodes_pb2.RemoveNodeRequest,
                     context: grpc.aio.ServicerContext) -> nodes_pb2.RemoveNodeResponse:
        await self.nodes.remove(request.node, request.force)
        return nodes_pb2.RemoveNodeResponse()


class DispatcherService(nodes_pb2_grpc.DispatcherServicer):
    """kran.api.v1.Dispatcher: agents register, keep their lease alive and report containers."""

    def __init__(self, nodes: NodeRegistry, containers: ContainerStore) -> None:
        self.nodes = nodes
        self.containers = containers

    async def Register(self, request: nodes_pb2.RegisterRequest,
                       context: grpc.aio.ServicerContext) -> nodes_pb2.RegisterResponse:
        lease = await self.nodes.register(request.node_id, request.description)
        return nodes_pb2.RegisterResponse(
            lease_id=lease, ttl_seconds=self.nodes.ttl,
            heartbeat_period_ms=self.nodes.ttl * 1000 // 3)

    async def Heartbeat(self, request: nodes_pb2.HeartbeatRequest,
                        context: grpc.aio.ServicerContext) -> nodes_pb2.HeartbeatResponse:
        await self.nodes.heartbeat(request.node_id, request.lease_id)
        return nodes_pb2.HeartbeatResponse()

    async def ReportContainers(self, request: nodes_pb2.ReportContainersRequest,
                               context: grpc.aio.ServicerContext
                               ) -> nodes_pb2.ReportContainersResponse:
        await self.containers.apply_reports(request.node_id, list(request.containers),
                                            request.full)
        return nodes_pb2.ReportContainersResponse()
