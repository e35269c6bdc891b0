"""Client: the entry point of the SDK (docker-py's `docker.DockerClient`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from kran.client.api import APIClient
from kran.defaults import DEFAULT_HOST

if TYPE_CHECKING:
    from kran.client.containers import ContainerCollection
    from kran.client.credentials import CredentialStore
    from kran.client.events import EventStream
    from kran.client.images import ImageCollection
    from kran.client.nodes import NodeCollection
    from kran.client.services import ServiceCollection


class Client:
    """A connection to a kran cluster's controllers.

    host: "host[:port]" of the controller (default 127.0.0.1:7640), or several
    ("a:7640,b:7640", or a list): calls go to one and move to the next when
    it does not answer.
    `api` is the thin stub layer; `containers`, `images` and `nodes` the collections.
    """

    def __init__(self, host: str | Sequence[str] | None = None):
        self.api = APIClient(host or DEFAULT_HOST)

    # The collections (and the generated modules behind them) are made when
    # first used, so that a short-lived program loads only what it calls.

    @cached_property
    def containers(self) -> ContainerCollection:
        """The containers of the cluster."""
        from kran.client.containers import ContainerCollection  # noqa: PLC0415 - see above
        return ContainerCollection(self)

    @cached_property
    def images(self) -> ImageCollection:
        """The images of the cluster's nodes."""
        from kran.client.images import ImageCollection  # noqa: PLC0415 - see above
        return ImageCollection(self)

    @cached_property
    def nodes(self) -> NodeCollection:
        """The nodes of the cluster."""
        from kran.client.nodes import NodeCollection  # noqa: PLC0415 - see above
        return NodeCollection(self)

    @cached_property
    def services(self) -> ServiceCollection:
        """The replicated services of the cluster."""
        from kran.client.services import ServiceCollection  # noqa: PLC0415 - see above
        return ServiceCollection(self)

    @cached_property
    def credentials(self) -> CredentialStore:
        """The user's registry credentials (~/.kran/config.json, or $KRAN_CONFIG/config.json)."""
        from kran.client.credentials import CredentialStore  # noqa: PLC0415 - see above
        return CredentialStore()

    def login(self, username: str, password: str = "", registry: str | None = None,
              identity_token: str = "") -> dict[str, str]:
        """Check credentials with a registry (docker-py's login); later calls of this client use them.

        registry: "host[:port]", default Docker Hub. Nothing is written to
        disk; `credentials.store()` keeps them for other processes.
        """
        return self.images.login(username, password, registry, identity_token)

    def events(self, since: Any = None, until: Any = None,
               filters: Mapping[str, str | Sequence[str]] | None = None,
               decode: bool | None = None) -> EventStream:
        """The cluster's events (docker-py's `events`): those kept since `since`, then new ones.

        since/until: datetime, Unix timestamp, RFC 3339 text or a duration
        before now ("10m"); without until the stream goes on until closed.
        filters: docker's (type, event, container, image, node, service,
        label), a value or a list of values each. Yields Event models;
        decode=True yields docker's JSON objects as dicts, decode=False as bytes.
        """
        from kran.client.events import EventStream, events_request  # noqa: PLC0415 - see above
        return EventStream(self, events_request(since, until, filters), decode)

    @classmethod
    def from_env(cls, environment: Mapping[str, str] | None = None) -> Client:
        """A client for the cluster the environment names, as the kran CLI picks it.

        KRAN_HOST (one endpoint or several), else the context KRAN_CONTEXT
        names, else the current context (`kran context use`), else 127.0.0.1:7640.
        """
        from kran.client.contexts import ContextStore  # noqa: PLC0415 - see above
        env = os.environ if environment is None else environment
        host, _ = ContextStore(environ=env).in_effect()
        return cls(host)

    @property
    def address(self) -> str:
        """The current controller's host:port (the one that answered last)."""
        return self.api.address

    @property
    def addresses(self) -> list[str]:
        """Every controller endpoint this client knows, in the order tried."""
        return list(self.api.addresses)

    def close(self) -> None:
        """Close the connection."""
        self.api.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def version(self) -> dict[str, Any]:
        """The controller's versions, shaped like Docker's `GET /version`."""
        from kran.api.v1 import system_pb2  # noqa: PLC0415 - only version and info need it
        v = self.api.call(self.api.system.Version, system_pb2.VersionRequest())
        return {
            "Version": v.version,
            "ApiVersion": v.api_version,
            "PythonVersion": v.python_version,
            "GitCommit": v.git_commit,
            "Os": v.os,
            "Arch": v.architecture,
            "KernelVersion": v.kernel_version,
            "Components": [
                {"Name": "kran-controller", "Version": v.version},
                {"Name": "etcd", "Version": v.etcd_version},
            ],
        }

    def info(self) -> dict[str, Any]:
        """Cluster-wide counts and where the state lives (Docker's `GET /info`)."""
        from kran.api.v1 import system_pb2  # noqa: PLC0415 - only version and info need it
        i = self.api.call(self.api.system.Info, system_pb2.InfoRequest())
        return {
            "ControllerAddress": i.controller_address,
            "Etcd": {"Endpoints": list(i.etcd_endpoints), "Embedded": i.embedded_etcd},
            "Leader": i.leader,
            "Nodes": i.nodes,
            "NodesReady": i.nodes_ready,
            "NodesDown": i.nodes_down,
            "Containers": i.containers,
            "ContainersRunning": i.containers_running,
            "ContainersPaused": i.containers_paused,
            "ContainersStopped": i.containers_stopped,
            "Images": i.images,
            "ServerVersion": i.server_version,
        }


def from_env() -> Client:
    """A client for the cluster named by KRAN_HOST or the current context (docker.from_env)."""
    return Client.from_env()
