"""The agent's kran.api.v1.Containers servicer: this node's containers.

The controller forwards each call here with the container's full id (and,
for Create, the id it made); the agent answers from its own records.
Lifecycle calls answer the container as it is afterwards. Top, Stats,
Diff, Commit and the copies come from ContainerOps, Exec from ExecOps.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime

import grpc

from agent.containers import attach, logs
from agent.containers.exec import ExecOps
from agent.containers.manager import ContainerManager
from agent.containers.ops import ContainerOps
from agent.containers.records import ContainerRecord, timestamp
from kran import errors
from kran.api.v1 import containers_pb2, containers_pb2_grpc

STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
_LIST_FILTERS = ("status", "name", "label", "ancestor", "node", "id")
_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def _has_label(record: ContainerRecord, wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    return key in record.config.labels and (not sep or record.config.labels[key] == value)


def _until(text: str) -> float:
    """Docker's `until`: a Unix time, an RFC 3339 time or a Go duration before now; as a Unix time."""
    try:
        return float(text)
    except ValueError:
        pass
    if _DURATION.sub("", text) == "" and text:
        return time.time() - sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text))
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise errors.InvalidArgument(f"invalid filter 'until={text}'") from None


def _created(record: ContainerRecord) -> float:
    stamp = timestamp(record.created)
    return stamp.seconds + stamp.nanos / 1e9


class ContainersService(ExecOps, ContainerOps, containers_pb2_grpc.ContainersServicer):
    """Serves the Containers RPCs for this node's ContainerManager."""

    def __init__(self, manager: ContainerManager) -> None:
        self.manager = manager

    def _answer(self, record: ContainerRecord) -> containers_pb2.Container:
        return self.manager.message(record)

    async def Create(self, request: containers_pb2.CreateContainerRequest,
                     context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        return self._answer(await self.manager.create(request))

    async def Start(self, request: containers_pb2.StartContainerRequest,
                    context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        return self._answer(await self.manager.start(request.container))

    async def Stop(self, request: containers_pb2.StopContainerRequest,
                   context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        timeout = request.timeout if request.timeout_set else None
        return self._answer(await self.manager.stop(request.container, timeout, request.signal))

    async def Restart(self, request: containers_pb2.StopContainerRequest,
                      context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        timeout = request.timeout if request.timeout_set else None
        return self._answer(await self.manager.restart(request.container, timeout))

    async def Kill(self, request: containers_pb2.KillContainerRequest,
                   context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        return self._answer(await self.manager.kill(request.container, request.signal))

    async def Remove(self, request: containers_pb2.RemoveContainerRequest,
                     context: grpc.aio.ServicerContext) -> containers_pb2.RemoveContainerResponse:
        await self.manager.remove(request.container, request.force)
        return containers_pb2.RemoveContainerResponse()

    async def Rename(self, request: containers_pb2.RenameContainerRequest,
                     context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        return self._answer(await self.manager.rename(request.container, request.name))

    async def Wait(self, request: containers_pb2.WaitContainerRequest,
                   context: grpc.aio.ServicerContext) -> containers_pb2.WaitContainerResponse:
        async def registered() -> None:
            await context.send_initial_metadata(())
        record = await self.manager.wait(request.container, request.condition, registered)
        return containers_pb2.WaitContainerResponse(status_code=record.state.exit_code, error=record.state.error)

    async def Inspect(self, request: containers_pb2.InspectContainerRequest,
                      context: grpc.aio.ServicerContext) -> containers_pb2.Container:
        return self._answer(self.manager.get(request.container))

    async def List(self, request: containers_pb2.ListContainersRequest,
                   context: grpc.aio.ServicerContext) -> containers_pb2.ListContainersResponse:
        filters = {key: list(values.values) for key, values in request.filters.items()}
        for key, values in filters.items():
            if key not in _LIST_FILTERS:
                raise errors.InvalidArgument(f"invalid filter '{key}'")
            for value in values if key == "status" else ():
                if value not in STATUSES:
                    raise errors.InvalidArgument(f"invalid filter 'status={value}'")
        ancestors = set()
        for ref in filters.get("ancestor", []):
            with contextlib.suppress(errors.NotFound, errors.InvalidArgument):
                ancestors.add(self.manager.store.resolve(ref))
        show_all = request.all or "status" in filters
        found = []
        for record in self.manager.list():
            if not show_all and not record.running:
                continue
            if not self._matches(record, filters, ancestors):
                continue
            found.append(self._answer(record))
            if request.limit > 0 and len(found) == request.limit:
                break
        return containers_pb2.ListContainersResponse(containers=found)

    def _matches(self, record: ContainerRecord, filters: dict[str, list[str]], ancestors: set[str]) -> bool:
        checks = {
            "status": lambda v: record.state.status == v,
            "name": lambda v: re.search(v.removeprefix("/"), record.name) is not None,
            "label": lambda v: _has_label(record, v),
            "ancestor": lambda v: record.image_id in ancestors or record.config.image == v,
            "node": lambda v: v in (self.manager.node_id, self.manager.node_name),
            "id": lambda v: record.id.startswith(v),
        }
        return all(any(checks[key](v) for v in values) for key, values in filters.items() if values)

    async def Prune(self, request: containers_pb2.PruneContainersRequest,
                    context: grpc.aio.ServicerContext) -> containers_pb2.PruneContainersResponse:
        filters = {key: list(values.values) for key, values in request.filters.items()}
        for key in filters:
            if key not in ("label", "label!", "until"):
                raise errors.InvalidArgument(f"invalid filter '{key}'")
        until = min((_until(v) for v in filters.get("until", [])), default=None)

        def keep(record: ContainerRecord) -> bool:
            if until is not None and _created(record) >= until:
                return True
            if any(not _has_label(record, v) for v in filters.get("label", [])):
                return True
            return any(_has_label(record, v) for v in filters.get("label!", []))

        deleted, freed = await self.manager.prune(keep)
        return containers_pb2.PruneContainersResponse(deleted=deleted, space_reclaimed=freed)

    async def Logs(self, request: containers_pb2.LogsRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[containers_pb2.LogEntry]:
        record = self.manager.get(request.container)
        async for entry in logs.read(record.log_path, request,
                                     running=lambda: record.state.status == "running" and not record.removed):
            yield entry

    async def Attach(self, request_iterator: AsyncIterator[containers_pb2.AttachRequest],
                     context: grpc.aio.ServicerContext) -> AsyncIterator[containers_pb2.AttachResponse]:
        async for response in attach.attach(self.manager, request_iterator):
            yield response

