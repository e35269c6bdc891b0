"""The kran Python SDK.

    import kran.client
    client = kran.client.from_env()
    print(client.containers.run("busybox", "echo hello"))
    for node in client.nodes.list():
        print(node.name, node.state)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kran.client.api import APIClient, ConnectionFailed, server_said
    from kran.client.build import BuildError
    from kran.client.client import Client, from_env
    from kran.client.containers import (Container, ContainerCollection, ContainerError,
                                        ExecResult, LogLine)
    from kran.client.contexts import Context, ContextStore
    from kran.client.credentials import CredentialStore, Credentials
    from kran.client.events import Event, EventStream
    from kran.client.images import Image, ImageCollection
    from kran.client.nodes import Node, NodeCollection
    from kran.client.registry import RegistryError
    from kran.client.services import Service, ServiceCollection, ServiceLogLine
    from kran.client.streams import StreamSession

# Each public name and the module that holds it. A name is imported on first
# use, so that a program (the kran CLI above all) loads only the parts it calls.
_HOMES = {
    "APIClient": "api", "ConnectionFailed": "api", "server_said": "api",
    "Client": "client", "from_env": "client",
    "BuildError": "build",
    "Container": "containers", "ContainerCollection": "containers",
    "ContainerError": "containers", "ExecResult": "containers", "LogLine": "containers",
    "Image": "images", "ImageCollection": "images",
    "Node": "nodes", "NodeCollection": "nodes",
    "Service": "services", "ServiceCollection": "services", "ServiceLogLine": "services",
    "StreamSession": "streams",
    "CredentialStore": "credentials", "Credentials": "credentials",
    "Context": "contexts", "ContextStore": "contexts",
    "Event": "events", "EventStream": "events",
    "RegistryError": "registry",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
