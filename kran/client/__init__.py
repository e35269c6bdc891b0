"""The kran Python SDK.

    import kran.client
    client = kran.client.from_env()
    for node in client.nodes.list():
        print(node.name, node.state)
"""

from kran.client.api import APIClient, ConnectionFailed, server_said
from kran.client.client import Client, from_env
from kran.client.images import Image, ImageCollection
from kran.client.nodes import Node, NodeCollection

__all__ = [
    "APIClient", "Client", "ConnectionFailed", "Image", "ImageCollection", "Node",
    "NodeCollection", "from_env", "server_said",
]
