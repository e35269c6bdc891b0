"""Nodes: the hosts of the cluster, shaped like `docker node inspect`."""

from __future__ import annotations

from typing import Any

from kran.api.v1 import nodes_pb2
from kran.client.models import Collection, Model
from kran.imageinspect import timestamp_rfc3339nano

_STATE = {
    nodes_pb2.NODE_STATUS_UNKNOWN: "unknown",
    nodes_pb2.NODE_STATUS_READY: "ready",
    nodes_pb2.NODE_STATUS_DOWN: "down",
}
_AVAILABILITY = {
    nodes_pb2.NODE_AVAILABILITY_ACTIVE: "active",
    nodes_pb2.NODE_AVAILABILITY_PAUSE: "pause",
    nodes_pb2.NODE_AVAILABILITY_DRAIN: "drain",
}


def _host(address: str) -> str:
    """The host part of host:port, as Docker's Status.Addr shows it."""
    if address.startswith("["):
        return address[1:].partition("]")[0]
    if address.count(":") == 1:
        return address.partition(":")[0]
    return address


def node_attrs(node: nodes_pb2.Node) -> dict[str, Any]:
    """A Node message as `docker node inspect` shapes it.

    Kran nodes are all workers (controllers are not nodes); the agent's
    full gRPC endpoint is kept in Status.Endpoint beside Docker's Addr.
    """
    desc = node.description
    status: dict[str, Any] = {"State": _STATE.get(node.status, "unknown")}
    if node.status_message:
        status["Message"] = node.status_message
    status["Addr"] = _host(desc.address)
    status["Endpoint"] = desc.address
    return {
        "ID": node.id,
        "CreatedAt": timestamp_rfc3339nano(node.created_at),
        "UpdatedAt": timestamp_rfc3339nano(node.updated_at),
        "Spec": {
            "Labels": dict(node.labels),
            "Role": "worker",
            "Availability": _AVAILABILITY.get(node.availability, "active"),
        },
        "Description": {
            "Hostname": desc.hostname,
            "Platform": {"Architecture": desc.architecture, "OS": desc.os},
            "Resources": {"NanoCPUs": desc.cpus * 1_000_000_000,
                          "MemoryBytes": desc.memory_bytes},
            "Engine": {"EngineVersion": desc.agent_version,
                       "KernelVersion": desc.kernel_version,
                       "Labels": dict(desc.labels)},
        },
        "Status": status,
    }


class Node(Model):
    """A host in the cluster."""

    id_attribute = "ID"

    @property
    def name(self) -> str:
        """The node's hostname."""
        return self.attrs["Description"]["Hostname"]

    @property
    def state(self) -> str:
        """"ready", "down" or "unknown"."""
        return self.attrs["Status"]["State"]

    @property
    def availability(self) -> str:
        """"active", "pause" or "drain"."""
        return self.attrs["Spec"]["Availability"]


class NodeCollection(Collection):
    """The nodes the controller knows, Ready or Down."""

    model = Node

    def list(self) -> list[Node]:
        """Every node, in the controller's order."""
        response = self.client.api.call(self.client.api.nodes.List,
                                        nodes_pb2.ListNodesRequest())
        return [self.prepare_model(node_attrs(n)) for n in response.nodes]

    def get(self, node_id: str) -> Node:
        """A node by id, unique id prefix or hostname."""
        node = self.client.api.call(self.client.api.nodes.Inspect,
                                    nodes_pb2.InspectNodeRequest(node=node_id))
        return self.prepare_model(node_attrs(node))
