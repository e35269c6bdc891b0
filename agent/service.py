"""The agent's kran.api.v1.Agent service: what this node is, for the controller."""

from __future__ import annotations

from pathlib import Path

import grpc

import kran
from agent.images.store import ImageStore
from kran.api.v1 import system_pb2, system_pb2_grpc


class AgentService(system_pb2_grpc.AgentServicer):
    """Answers Agent.Info from this node's id and image store."""

    def __init__(self, node_id: str, state_dir: Path, store: ImageStore) -> None:
        self.node_id = node_id
        self.state_dir = state_dir
        self.store = store

    async def Info(self, request: system_pb2.AgentInfoRequest,
                   context: grpc.aio.ServicerContext) -> system_pb2.AgentInfoResponse:
        images, image_bytes = self.store.stats()
        return system_pb2.AgentInfoResponse(
            node_id=self.node_id, images=images, image_bytes=image_bytes,
            state_dir=str(self.state_dir), version=kran.__version__)
