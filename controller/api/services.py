"""The Services API: served by every controller; the leader's reconciler does the work.

Create, Update, Rollback and Remove write the service record in etcd (the
leader sees it and acts); List, Inspect and ListTasks read etcd; Remove also
removes the tasks' containers and records itself, so that a removed service
is gone when the call returns; Logs merges the task containers' logs from
their agents.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence

import grpc

from controller.agents import AgentPool
from controller.events import EventLog
from controller.nodes import NodeRegistry, NodeState
from controller.services import logs
from controller.services.jobs import CONCURRENCY, TaskContainers
from controller.services.records import ServiceRecord, Task, task_name
from controller.services.store import ServiceStore
from kran import errors
from kran.api.v1 import services_pb2, services_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_FILTERS = ("id", "name", "label", "mode")
TASK_FILTERS = ("id", "name", "node", "desired-state", "service")
DESIRED_STATES = ("running", "shutdown", "accepted")


def _filters(given: Mapping[str, services_pb2.FilterValues] | object,
             allowed: Sequence[str]) -> dict[str, list[str]]:
    out = {key: list(value.values) for key, value in given.items()}  # type: ignore[attr-defined]
    for key in out:
        if key not in allowed:
            raise errors.InvalidArgument(f"invalid filter '{key}'")
    return out


def service_matches(service: ServiceRecord, filters: Mapping[str, list[str]]) -> bool:
    """docker service ls --filter: id and name by prefix, label as key or key=value, mode."""
    for key, values in filters.items():
        if key == "id" and not any(service.id.startswith(v) for v in values):
            return False
        if key == "name" and not any(service.name.startswith(v) for v in values):
            return False
        if key == "mode" and "replicated" not in values:
            return False
        if key == "label":
            labels = service.spec.labels
            for wanted in values:
                name, has_value, value = wanted.partition("=")
                if name not in labels or (has_value and labels[name] != value):
                    return False
    return True


def task_matches(task: Task, name: str, nodes: Mapping[str, NodeState],
                 filters: Mapping[str, list[str]]) -> bool:
    """docker service ps --filter: id (prefix), name, node (id or hostname), desired-state."""
    for key, values in filters.items():
        if key == "id" and not any(task.id.startswith(v) for v in values):
            return False
        if key == "name" and not any(task_name(name, task.slot).startswith(v) for v in values):
            return False
        if key == "service" and not any(v in (task.service_id, name) for v in values):
            return False
        if key == "node":
            node = nodes.get(task.node_id)
            names = {task.node_id, node.hostname if node is not None else ""}
            if not names & set(values):
                return False
        if key == "desired-state":
            for value in values:
                if value not in DESIRED_STATES:
                    raise errors.InvalidArgument(
                        f"invalid filter 'desired-state={value}': use running, shutdown or accepted")
            wanted = {"running" if v == "accepted" else v for v in values}
            if task.desired not in wanted:
                return False
    return True


def running_counts(tasks: Sequence[Task]) -> Counter[str]:
    """How many tasks of each service run (desired running and running)."""
    return Counter(t.service_id for t in tasks if t.desired == "running" and t.state == "running")


class ServicesService(services_pb2_grpc.ServicesServicer):
    """kran.api.v1.Services."""

    def __init__(self, services: ServiceStore, nodes: NodeRegistry, agents: AgentPool,
                 containers: TaskContainers, events: EventLog | None = None) -> None:
        self.services = services
        self.nodes = nodes
        self.agents = agents
        self.containers = containers
        self.events = events

    async def _emit(self, action: str, service: ServiceRecord) -> None:
        if self.events is not None:
            await self.events.emit("service", action, service.id, {"name": service.name})

    async def Create(self, request: services_pb2.CreateServiceRequest,
                     context: grpc.aio.ServicerContext) -> services_pb2.Service:
        service = await self.services.create(request.spec)
        await self._emit("create", service)
        return service.to_proto()

    async def List(self, request: services_pb2.ListServicesRequest,
                   context: grpc.aio.ServicerContext) -> services_pb2.ListServicesResponse:
        filters = _filters(request.filters, SERVICE_FILTERS)
        services, tasks = await asyncio.gather(self.services.all(), self.services.tasks())
        running = running_counts(tasks)
        return services_pb2.ListServicesResponse(services=[
            s.to_proto(running[s.id]) for s in services if service_matches(s, filters)])

    async def Inspect(self, request: services_pb2.InspectServiceRequest,
                      context: grpc.aio.ServicerContext) -> services_pb2.Service:
        service = await self.services.resolve(request.service)
        tasks = await self.services.tasks(service.id)
        return service.to_proto(running_counts(tasks)[service.id])

    async def Update(self, request: services_pb2.UpdateServiceRequest,
                     context: grpc.aio.ServicerContext) -> services_pb2.Service:
        service = await self.services.update(request.service, request.spec, request.version,
                                             request.force)
        await self._emit("update", service)
        return service.to_proto()

    async def Rollback(self, request: services_pb2.RollbackServiceRequest,
                       context: grpc.aio.ServicerContext) -> services_pb2.Service:
        service = await self.services.rollback(request.service)
        await self._emit("update", service)
        return service.to_proto()

    async def Remove(self, request: services_pb2.RemoveServiceRequest,
                     context: grpc.aio.ServicerContext) -> services_pb2.RemoveServiceResponse:
        service = await self.services.remove(request.service)
        tasks = await self.services.tasks(service.id)
        limit = asyncio.Semaphore(CONCURRENCY)

        async def remove(task: Task) -> None:
            if not task.node_id:
                return
            async with limit:
                try:
                    await self.containers.remove(task.container_id, task.node_id)
                except errors.KranError as exc:
                    # The leader removes what is left once it can.
                    log.warning("could not remove a task container", extra={
                        "service": service.id, "task": task.id, "error": str(exc)})
        await asyncio.gather(*(remove(task) for task in tasks))
        await self.services.delete_tasks(tasks)
        await self._emit("remove", service)
        return services_pb2.RemoveServiceResponse()

    async def ListTasks(self, request: services_pb2.ListTasksRequest,
                        context: grpc.aio.ServicerContext) -> services_pb2.ListTasksResponse:
        filters = _filters(request.filters, TASK_FILTERS)
        if request.service:
            service = await self.services.resolve(request.service)
            services = {service.id: service}
            tasks = await self.services.tasks(service.id)
        else:
            records, tasks = await asyncio.gather(self.services.all(), self.services.tasks())
            services = {s.id: s for s in records}
        nodes = {node.id: node for node in await self.nodes.states()}
        out = []
        for task in tasks:
            service = services.get(task.service_id)
            if service is None or not task_matches(task, service.name, nodes, filters):
                continue
            node = nodes.get(task.node_id)
            out.append(task.to_proto(service.name, node.hostname if node is not None else ""))
        out.sort(key=lambda t: (t.service_name, t.slot, -t.created_at.seconds,
                                -t.created_at.nanos))
        return services_pb2.ListTasksResponse(tasks=out)

    async def Logs(self, request: services_pb2.ServiceLogsRequest,
                   context: grpc.aio.ServicerContext
                   ) -> AsyncIterator[services_pb2.ServiceLogEntry]:
        if request.tail and request.tail != "all":
            try:
                int(request.tail)
            except ValueError:
                raise errors.InvalidArgument(f"invalid tail value: {request.tail}") from None
        service = await self.services.resolve(request.service)
        tasks, states = await asyncio.gather(self.services.tasks(service.id), self.nodes.states())
        nodes = {node.id: node for node in states}
        sources = [(task, nodes[task.node_id]) for task in sorted(tasks, key=lambda t: (
            t.slot, t.created_at)) if task.node_id in nodes and nodes[task.node_id].ready
                   and task.state not in ("new", "pending", "assigned")]
        if not request.stdout and not request.stderr:
            request.stdout = request.stderr = True
        async for line in logs.merged(self.agents, sources, request):
            yield line
