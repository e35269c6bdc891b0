"""Nodes: the hosts of the cluster, shaped like `docker node inspect`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kran import errors
from kran.api.v1 import nodes_pb2
from kran.client.config import label_map
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
_AVAILABILITY_OF = {text: value for value, text in _AVAILABILITY.items()}


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
    full gRPC endpoint is kept in Status.Endpoint beside Docker's Addr, and
    Allocated (kran's own) sums what the containers placed there reserve.
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
        "Allocated": {"NanoCPUs": node.allocated.nano_cpus,
                      "MemoryBytes": node.allocated.memory_bytes,
                      "Containers": node.allocated.containers,
                      "Ports": list(node.allocated.ports)},
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

    def update(self, node_spec: dict[str, Any]) -> bool:
        """Set the node's spec, as docker-py: {"Availability": "drain", "Labels": {...}}.

        Labels, when given, replace the node's labels; keys left out keep
        their value. attrs are refreshed.
        """
        unknown = set(node_spec) - {"Availability", "Labels", "Name", "Role"}
        if unknown:
            raise errors.InvalidArgument(
                f"unknown node spec field(s): {', '.join(sorted(unknown))}")
        if node_spec.get("Role", "worker") != "worker":
            raise errors.InvalidArgument("kran nodes are all workers; the role cannot change")
        labels = node_spec.get("Labels")
        dropped = [] if labels is None else [k for k in self.attrs["Spec"]["Labels"]
                                             if k not in labels]
        updated = self.collection.update(self.id, availability=node_spec.get("Availability"),
                                         label_add=labels, label_rm=dropped)
        self.attrs = updated.attrs
        return True

    def remove(self, force: bool = False) -> None:
        """Remove the node from the cluster (a Ready node only with force)."""
        self.collection.remove(self.id, force=force)


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

    def update(self, node_id: str, availability: str | None = None,
               label_add: Mapping[str, str] | Iterable[str] | None = None,
               label_rm: Iterable[str] = ()) -> Node:
        """Change a node's availability ("active", "pause", "drain") and labels.

        label_add takes a mapping or "k=v" strings ("k" alone: an empty
        value); label_rm the keys to remove, each of which must exist.
        """
        request = nodes_pb2.UpdateNodeRequest(node=node_id, label_add=label_map(label_add),
                                              label_rm=list(label_rm))
        if availability is not None:
            wanted = availability.lower()
            if wanted not in _AVAILABILITY_OF:
                raise errors.InvalidArgument(
                    f"invalid availability {availability!r}: use active, pause or drain")
            request.availability, request.availability_set = _AVAILABILITY_OF[wanted], True
        node = self.client.api.call(self.client.api.nodes.Update, request)
        return self.prepare_model(node_attrs(node))

    def remove(self, node_id: str, force: bool = False) -> None:
        """Remove a node from the cluster; a Ready node only with force."""
        self.client.api.call(self.client.api.nodes.Remove,
                             nodes_pb2.RemoveNodeRequest(node=node_id, force=force))
