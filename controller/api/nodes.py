"""The Nodes service (for users) and the Dispatcher service (for agents)."""

from __future__ import annotations

import grpc

from controller.containers import ContainerStore
from controller.nodes import NodeRegistry
from kran.api.v1 import nodes_pb2, nodes_pb2_grpc


class NodesService(nodes_pb2_grpc.NodesServicer):
    """kran.api.v1.Nodes: list and inspect the cluster's nodes."""

    def __init__(self, nodes: NodeRegistry) -> None:
        self.nodes = nodes

    async def List(self, request: nodes_pb2.ListNodesRequest,
                   context: grpc.aio.ServicerContext) -> nodes_pb2.ListNodesResponse:
        return nodes_pb2.ListNodesResponse(
            nodes=[node.to_proto() for node in await self.nodes.states()])

    async def Inspect(self, request: nodes_pb2.InspectNodeRequest,
                      context: grpc.aio.ServicerContext) -> nodes_pb2.Node:
        return (await self.nodes.resolve(request.node)).to_proto()


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
