"""Services: docker-py's `client.services` and its `Service` model.

    web = client.services.create("busybox", args=["sleep", "1d"], name="web", replicas=3)
    web.scale(5)
    web.update(image="busybox:1.36", update_config={"Parallelism": 2})
    for task in web.tasks():
        print(task["Slot"], task["NodeName"], task["Status"]["State"])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from kran.api.v1 import containers_pb2, services_pb2
from kran.client.containers import _filters, _timestamp
from kran.client.models import Collection, Model
from kran.client.servicespec import change_spec, service_attrs, service_spec, task_attrs
from kran.imageinspect import timestamp_rfc3339nano


class ServiceLogLine(NamedTuple):
    """One line of a service's log and the task it came from."""

    task_id: str
    slot: int
    node_name: str
    stream: str       # "stdout" | "stderr"
    data: bytes
    time: str         # RFC3339Nano


class Service(Model):
    """A replicated service: `attrs` is shaped like `docker service inspect`."""

    id_attribute = "ID"

    def __init__(self, attrs: dict[str, Any], client: Any, collection: Collection,
                 message: services_pb2.Service | None = None):
        super().__init__(attrs, client, collection)
        self.message = message

    @property
    def name(self) -> str:
        """The service's name."""
        return self.attrs["Spec"]["Name"]

    @property
    def version(self) -> int:
        """The version of the service's record (changes with each write)."""
        return self.attrs["Version"]["Index"]

    def reload(self) -> None:
        """Fetch the service again."""
        fresh = self.collection.get(self.id)
        self.attrs, self.message = fresh.attrs, fresh.message  # type: ignore[attr-defined]

    def tasks(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The service's tasks (each slot's history too), newest first per slot."""
        api = self.client.api
        response = api.call(api.services.ListTasks, services_pb2.ListTasksRequest(
            service=self.id, filters=_filters(filters)))
        return [task_attrs(task) for task in response.tasks]

    def update(self, image: str | None = None, command: str | Iterable[str] | None = None,
               force_update: bool = False, **kwargs: Any) -> Service:
        """Change the spec (what is not given stays); a changed template rolls the tasks over.

        Takes create()'s keyword arguments; force_update replaces the tasks
        even when nothing changed. Fails (FailedPrecondition) if the service
        changed since it was read.
        """
        self.reload()
        assert self.message is not None
        spec = services_pb2.ServiceSpec()
        spec.CopyFrom(self.message.spec)
        change_spec(spec, image, command, **kwargs)
        api = self.client.api
        answer = api.call(api.services.Update, services_pb2.UpdateServiceRequest(
            service=self.id, spec=spec, version=self.message.version, force=force_update))
        self.attrs, self.message = service_attrs(answer), answer
        return self

    def scale(self, replicas: int) -> Service:
        """Run this many tasks."""
        return self.update(replicas=replicas)

    def rollback(self) -> Service:
        """Go back to the previous spec."""
        api = self.client.api
        answer = api.call(api.services.Rollback,
                          services_pb2.RollbackServiceRequest(service=self.id))
        self.attrs, self.message = service_attrs(answer), answer
        return self

    def remove(self) -> None:
        """Remove the service, its tasks and their containers."""
        api = self.client.api
        api.call(api.services.Remove, services_pb2.RemoveServiceRequest(service=self.id))

    def logs(self, follow: bool = False, tail: str | int = "all",
             since: datetime | float | int | None = None, stdout: bool = True,
             stderr: bool = True) -> Iterator[ServiceLogLine]:
        """The tasks' log lines, merged (in time order unless following)."""
        api = self.client.api
        request = services_pb2.ServiceLogsRequest(service=self.id, follow=follow,
                                                  tail=str(tail), stdout=stdout, stderr=stderr)
        stamp = _timestamp(since)
        if stamp is not None:
            request.since.CopyFrom(stamp)
        for line in api.stream(api.services.Logs, request):
            entry = line.entry
            yield ServiceLogLine(line.task_id, line.slot, line.node_name,
                                 "stderr" if entry.stream == containers_pb2.STREAM_STDERR
                                 else "stdout", entry.data, timestamp_rfc3339nano(entry.time))


class ServiceCollection(Collection):
    """The services of the cluster."""

    model = Service

    def _model(self, message: services_pb2.Service) -> Service:
        return Service(service_attrs(message), self.client, self, message)

    def create(self, image: str, command: str | Iterable[str] | None = None,
               **kwargs: Any) -> Service:
        """Create a service (docker-py's create).

        name, replicas (default 1), args, env, labels, container_labels,
        constraints, placement_strategy, resources, restart_policy,
        update_config, rollback_config, workdir, user, hostname, tty, init,
        stop_signal, stop_grace_period (ns).
        """
        api = self.client.api
        answer = api.call(api.services.Create, services_pb2.CreateServiceRequest(
            spec=service_spec(image, command, **kwargs)))
        return self._model(answer)

    def get(self, service_id: str) -> Service:
        """A service by id, name or unique id prefix."""
        api = self.client.api
        return self._model(api.call(api.services.Inspect,
                                    services_pb2.InspectServiceRequest(service=service_id)))

    def list(self, filters: Mapping[str, Any] | None = None) -> list[Service]:
        """Every service (filters: id, name, label, mode)."""
        api = self.client.api
        response = api.call(api.services.List,
                            services_pb2.ListServicesRequest(filters=_filters(filters)))
        return [self._model(s) for s in response.services]

    def tasks(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every service's tasks (filters: id, name, node, desired-state, service)."""
        api = self.client.api
        response = api.call(api.services.ListTasks,
                            services_pb2.ListTasksRequest(filters=_filters(filters)))
        return [task_attrs(task) for task in response.tasks]
