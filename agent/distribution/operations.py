"""Distribution: one node's pulls, pushes, logins and searches, with its registry options."""

from __future__ import annotations

from collections.abc import AsyncIterator

from agent.distribution.auth import Credentials
from agent.distribution.login import login
from agent.distribution.progress import Reporter
from agent.distribution.pull import Puller
from agent.distribution.push import Pusher
from agent.distribution.registries import RegistryOptions
from agent.distribution.search import Found, search
from agent.images.store import ImageStore
from kran.api.v1 import images_pb2


class Distribution:
    """One node's pulls, pushes, logins and searches, with its registry options."""

    def __init__(self, store: ImageStore, options: RegistryOptions) -> None:
        self.options = options
        self.puller = Puller(store, options)
        self.pusher = Pusher(store, options)

    def pull(self, reference: str, credentials: Credentials, platform: str = "",
             all_tags: bool = False) -> AsyncIterator[images_pb2.Progress]:
        """docker pull's progress lines; the stream raises the pull's error at its end."""
        reporter = Reporter()
        return reporter.stream(self.puller.pull(reference, reporter, credentials, platform, all_tags))

    def push(self, reference: str, credentials: Credentials,
             all_tags: bool = False) -> AsyncIterator[images_pb2.Progress]:
        """docker push's progress lines; the stream raises the push's error at its end."""
        reporter = Reporter()
        return reporter.stream(self.pusher.push(reference, reporter, credentials, all_tags))

    async def login(self, server_address: str, credentials: Credentials) -> str:
        """Check credentials against a registry: "Login Succeeded" or errors.PermissionDenied."""
        return await login(self.options, server_address, credentials)

    async def search(self, term: str, limit: int, credentials: Credentials) -> list[Found]:
        """Catalog entries matching `term`."""
        return await search(self.options, term, limit, credentials)
