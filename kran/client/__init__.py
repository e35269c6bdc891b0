"""The kran Python SDK.

    import kran.client
    client = kran.client.from_env()
    print(client.containers.run("busybox", "echo hello"))
    for node in client.nodes.list():
        print(node.name, node.state)
"""

from kran.client.api import APIClient, ConnectionFailed, server_said
from kran.client.client import Client, from_env
from kran.client.containers import (Container, ContainerCollection, ContainerError, ExecResult,
                                    LogLine)
from kran.client.images import Image, ImageCollection
from kran.client.nodes import Node, NodeCollection
from kran.client.streams import StreamSession

__all__ = [
    "APIClient", "Client", "ConnectionFailed", "Container", "ContainerCollection",
    "ContainerError", "ExecResult", "Image", "ImageCollection", "LogLine", "Node",
    "NodeCollection", "StreamSession", "from_env", "server_said",
]
