"""Services and their tasks in etcd: what the API writes and everyone reads.

Users write a service's spec (Create, Update, Rollback, Remove); the leader
writes its update status and its tasks. Names are reserved as container
names are: `names/services/<name>` created in the record's transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict

from controller import names
from controller.services.records import (ID_LENGTH, NAMES, SERVICES, TASKS, ServiceRecord, Task,
                                         UpdateState, new_id, service_value, task_prefix,
                                         template_digest)
from controller.services.specs import normalized
from controller.store import Check, Store
from kran import errors
from kran.api.v1 import services_pb2

log = logging.getLogger(__name__)

MAX_TXN_OPS = 128      # etcd's default limit of operations in one transaction
_RETRIES = 10
_NAME_ATTEMPTS = 10


def name_taken(name: str) -> errors.AlreadyExists:
    """The answer to a service name that is in use."""
    return errors.AlreadyExists(f"service with name {name} already exists")


def not_found(ref: str) -> errors.NotFound:
    """The answer to a service nobody knows."""
    return errors.NotFound(f"service {ref} not found")


class ServiceStore:
    """Service records, names and task records over a Store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- services ----------------------------------------------------------

    async def create(self, spec: services_pb2.ServiceSpec) -> ServiceRecord:
        """Check spec, reserve its name (made up when empty) and write the record, atomically."""
        spec = normalized(spec)
        now = time.time()
        for attempt in range(_NAME_ATTEMPTS):
            service_id = new_id()
            named = services_pb2.ServiceSpec()
            named.CopyFrom(spec)
            named.name = spec.name or names.generate(attempt // 3)
            value = service_value(service_id, named, None, now, now, UpdateState(), 0)
            try:
                await self.store.transaction(
                    [Check.absent(NAMES + named.name), Check.absent(SERVICES + service_id)],
                    {NAMES + named.name: {"id": service_id}, SERVICES + service_id: value})
            except errors.Conflict:
                if spec.name:
                    raise name_taken(spec.name) from None
                continue
            log.info("service created", extra={"service": service_id,
                                               "service_name": named.name})
            return await self.get_or_raise(service_id, named.name)
        raise errors.Conflict("could not find a free service name; give one with --name")

    async def get(self, service_id: str) -> ServiceRecord | None:
        """The service with this full id, or None."""
        entry = await self.store.get(SERVICES + service_id)
        return ServiceRecord.from_entry(entry) if entry is not None else None

    async def get_or_raise(self, service_id: str, ref: str) -> ServiceRecord:
        """The service with this full id; NotFound naming ref if it is gone."""
        found = await self.get(service_id)
        if found is None:
            raise not_found(ref)
        return found

    async def resolve(self, ref: str) -> ServiceRecord:
        """The service ref names: a full id, a name or a unique id prefix."""
        if not ref:
            raise errors.InvalidArgument("no service given")
        if len(ref) == ID_LENGTH:
            found = await self.get(ref)
            if found is not None:
                return found
        reservation = await self.store.get(NAMES + ref)
        if reservation is not None:
            found = await self.get(reservation.value["id"])
            if found is not None:
                return found
        if "/" not in ref:
            keys = await self.store.keys(SERVICES + ref)
            if len(keys) > 1:
                raise errors.InvalidArgument(
                    f"service {ref} is ambiguous ({len(keys)} services have that id prefix)")
            if keys:
                found = await self.get(keys[0][len(SERVICES):])
                if found is not None:
                    return found
        raise not_found(ref)

    async def all(self) -> list[ServiceRecord]:
        """Every service, by id."""
        return [ServiceRecord.from_entry(e) for e in await self.store.list(SERVICES)]

    async def update(self, ref: str, spec: services_pb2.ServiceSpec, version: int = 0,
                     force: bool = False) -> ServiceRecord:
        """Replace the spec (the old one becomes previous_spec); a new template starts an update.

        version, when given, must be the service's current version
        (FailedPrecondition otherwise); force replaces every task even if
        the template did not change.
        """
        for _ in range(_RETRIES):
            current = await self.resolve(ref)
            if version and current.version != version:
                raise errors.FailedPrecondition(
                    f"update out of sequence: service {current.name} is at version "
                    f"{current.version}, not {version}")
            new = normalized(spec)
            new.name = new.name or current.name
            if new.name != current.name:
                raise errors.InvalidArgument("renaming services is not supported")
            counter = current.force + (1 if force else 0)
            now = time.time()
            status = current.update_status
            if template_digest(new, counter) != current.digest:
                status = UpdateState("updating", now, 0.0, "update in progress")
            value = service_value(current.id, new, current.spec, current.entry.value["created_at"],
                                  now, status, counter)
            if await self._replace(current, value, version):
                log.info("service updated", extra={"service": current.id,
                                                   "update": status.state or "none"})
                return await self.get_or_raise(current.id, ref)
        raise errors.Conflict(f"service {ref} is being changed concurrently; try again")

    async def rollback(self, ref: str) -> ServiceRecord:
        """Go back to the previous spec (which becomes the previous one in turn)."""
        for _ in range(_RETRIES):
            current = await self.resolve(ref)
            if current.previous_spec is None:
                raise errors.FailedPrecondition(
                    f"service {current.name} does not have a previous spec")
            now = time.time()
            status = UpdateState("rollback_started", now, 0.0, "manually requested rollback")
            value = service_value(current.id, current.previous_spec, current.spec,
                                  current.entry.value["created_at"], now, status, current.force)
            if await self._replace(current, value, 0):
                log.info("service rollback requested", extra={"service": current.id})
                return await self.get_or_raise(current.id, ref)
        raise errors.Conflict(f"service {ref} is being changed concurrently; try again")

    async def _replace(self, current: ServiceRecord, value: dict, version: int) -> bool:
        """Write value over current if it did not change; False to read again."""
        try:
            await self.store.transaction([Check.unchanged(current.entry)],
                                         {current.entry.key: value})
        except errors.Conflict:
            if version:
                raise errors.FailedPrecondition(
                    f"update out of sequence: service {current.name} changed meanwhile") from None
            return False
        return True

    async def set_status(self, current: ServiceRecord, status: UpdateState, rollback: bool,
                         fence: Check) -> bool:
        """The leader's write of an update status (and, with rollback, the swap of specs).

        False if the service changed meanwhile (the leader plans again with
        the new record); errors.Conflict if fence no longer holds.
        """
        value = dict(current.entry.value)
        if rollback and current.previous_spec is not None:
            value = service_value(current.id, current.previous_spec, current.spec,
                                  value["created_at"], time.time(), status, current.force)
        else:
            value["update_status"] = asdict(status)
        try:
            await self.store.transaction([Check.unchanged(current.entry), fence],
                                         {current.entry.key: value})
        except errors.Conflict:
            entry = await self.store.get(current.entry.key)
            if entry is not None and entry.mod_revision != current.entry.mod_revision:
                return False
            raise
        return True

    async def remove(self, ref: str) -> ServiceRecord:
        """Delete the service's record and name (its tasks are the caller's to clean up)."""
        for _ in range(_RETRIES):
            current = await self.resolve(ref)
            deletes = [current.entry.key]
            checks = [Check.unchanged(current.entry)]
            reservation = await self.store.get(NAMES + current.name)
            if reservation is not None and reservation.value["id"] == current.id:
                deletes.append(reservation.key)
                checks.append(Check.unchanged(reservation))
            try:
                await self.store.transaction(checks, {}, deletes)
            except errors.Conflict:
                continue
            log.info("service removed", extra={"service": current.id,
                                               "service_name": current.name})
            return current
        raise errors.Conflict(f"service {ref} is being changed concurrently; try again")

    # -- tasks -------------------------------------------------------------

    async def tasks(self, service_id: str = "") -> list[Task]:
        """The tasks of one service, or of every service."""
        prefix = task_prefix(service_id) if service_id else TASKS
        return [Task.from_value(e.value) for e in await self.store.list(prefix)]

    async def delete_tasks(self, tasks: Sequence[Task]) -> None:
        """Delete task records (in transactions of at most MAX_TXN_OPS deletes)."""
        keys = [task.key for task in tasks]
        for start in range(0, len(keys), MAX_TXN_OPS):
            await self.store.transaction([], {}, keys[start:start + MAX_TXN_OPS])

