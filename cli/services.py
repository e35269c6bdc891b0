"""`kran service ...`: docker's service commands over the SDK."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import click

from cli.flags import CheckedType, DockerCommand, StatusError
from cli.images import parse_filters
from cli.inspecting import inspect_all
from cli.logs import _tail, parse_time
from cli.output import created_since, ellipsis, table
from cli.ps import go_quote
from cli.service_flags import count, create_kwargs, shared_options, update_kwargs
from cli.service_progress import UpdatePaused, wait_converged
from cli.session import Session, error_line, pass_session
from cli.streams import STDERR, STDOUT, write_all
from kran import errors, reference
from kran.client import Service
from kran.client.config import split_command
from kran.imageinspect import unix_seconds

SERVICE_HEADER = ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]
TASK_HEADER = ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"]
ERROR_WIDTH = 30


def familiar_image(image: str) -> str:
    """The image as docker's service tables show it: familiar, without a digest."""
    try:
        parsed = reference.parse(image)
    except errors.KranError:
        return image
    return parsed.familiar().partition("@")[0]


def services_table(services: Sequence[Service]) -> str:
    """`service ls`: ID NAME MODE REPLICAS IMAGE PORTS, by name."""
    rows = []
    for service in sorted(services, key=lambda s: s.name):
        status = service.attrs["ServiceStatus"]
        image = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        rows.append([service.id[:12], service.name, "replicated",
                     f"{status['RunningTasks']}/{status['DesiredTasks']}",
                     familiar_image(image), ""])
    return table(SERVICE_HEADER, rows)


def current_state(task: Mapping[str, Any], now: float | None = None) -> str:
    """The CURRENT STATE cell: "Running 5 seconds ago"."""
    status = task["Status"]
    since = created_since(unix_seconds(status["Timestamp"]), now)
    return f"{status['State'].capitalize()} {since}"


def tasks_table(tasks: Sequence[Mapping[str, Any]], no_trunc: bool,
                now: float | None = None) -> str:
    """`service ps`: each slot's newest task, then its history as "\\_ name" lines."""
    rows = []
    previous: tuple[str, int] | None = None
    for task in tasks:
        name = f"{task['ServiceName']}.{task['Slot']}"
        slot = (task["ServiceID"], task["Slot"])
        if slot == previous:
            name = " \\_ " + name
        previous = slot
        error = task["Status"]["Err"]
        if error:
            error = go_quote(error if no_trunc else ellipsis(error, ERROR_WIDTH))
        image = task["Spec"]["ContainerSpec"]["Image"]
        rows.append([task["ID"] if no_trunc else task["ID"][:12], name,
                     image if no_trunc else familiar_image(image), task["NodeName"],
                     task["DesiredState"].capitalize(), current_state(task, now), error, ""])
    return table(TASK_HEADER, rows)


def _duration(ns: int) -> str:
    seconds = ns / 1e9
    return f"{seconds:g}s"


def pretty(attrs: Mapping[str, Any]) -> str:
    """`service inspect --pretty` for one service."""
    spec = attrs["Spec"]
    template = spec["TaskTemplate"]
    container = template["ContainerSpec"]
    lines = [f"ID:\t\t{attrs['ID']}", f"Name:\t\t{spec['Name']}"]
    if spec.get("Labels"):
        lines.append("Labels:")
        lines.extend(f" {k}={v}" for k, v in sorted(spec["Labels"].items()))
    lines += ["Service Mode:\tReplicated", f" Replicas:\t{spec['Mode']['Replicated']['Replicas']}"]
    status = attrs.get("UpdateStatus")
    if status:
        lines += ["UpdateStatus:", f" State:\t\t{status['State']}",
                  f" Started:\t{status['StartedAt']}"]
        if status.get("CompletedAt"):
            lines.append(f" Completed:\t{status['CompletedAt']}")
        lines.append(f" Message:\t{status['Message']}")
    placement = template.get("Placement", {})
    if placement:
        lines.append("Placement:")
        if placement.get("Constraints"):
            lines.append(f" Constraints:\t[{' '.join(placement['Constraints'])}]")
        if placement.get("Strategy"):
            lines.append(f" Strategy:\t{placement['Strategy']}")
    restart = template["RestartPolicy"]
    lines += ["RestartPolicy:", f" Condition:\t{restart['Condition']}",
              f" Delay:\t\t{_duration(restart['Delay'])}",
              f" Max attempts:\t{restart['MaxAttempts']}"]
    for title, key in (("UpdateConfig", "UpdateConfig"), ("RollbackConfig", "RollbackConfig")):
        config = spec[key]
        lines += [f"{title}:", f" Parallelism:\t{config['Parallelism']}"]
        if config["Delay"]:
            lines.append(f" Delay:\t\t{_duration(config['Delay'])}")
        lines += [f" On failure:\t{config['FailureAction']}",
                  f" Monitoring Period: {_duration(config['Monitor'])}",
                  f" Max failure ratio: {config['MaxFailureRatio']:g}",
                  f" {'Update' if key == 'UpdateConfig' else 'Rollback'} order:"
                  f"      {config['Order']}"]
    lines += ["ContainerSpec:", f" Image:\t\t{container['Image']}"]
    if container.get("Command"):
        lines.append(f" Command:\t{' '.join(container['Command'])}")
    if container.get("Args"):
        lines.append(f" Args:\t\t{' '.join(container['Args'])}")
    if container.get("Env"):
        lines.append(f" Env:\t\t{' '.join(container['Env'])}")
    resources = template["Resources"]
    limits, reservations = resources["Limits"], resources["Reservations"]
    if any(limits.values()) or any(reservations.values()):
        lines.append("Resources:")
        for title, values in (("Reservations", reservations), ("Limits", limits)):
            if any(values.values()):
                lines.append(f" {title}:")
                if values["NanoCPUs"]:
                    lines.append(f"  CPU:\t\t{values['NanoCPUs'] / 1e9:g}")
                if values["MemoryBytes"]:
                    lines.append(f"  Memory:\t{values['MemoryBytes']}")
    return "\n".join(lines) + "\n"


def _converge(service: Service, options: Mapping[str, Any], verify: bool = True) -> None:
    """Unless detached, wait for the service to converge (progress unless quiet)."""
    if options.get("detach"):
        return
    try:
        wait_converged(service, io.StringIO() if options.get("quiet") else None, verify=verify)
    except UpdatePaused as exc:
        raise StatusError(f"Error: {exc}", 1) from None


# -- commands ------------------------------------------------------------------

CONTEXT = {"allow_interspersed_args": False, "help_option_names": ["--help"]}


@click.command("create", cls=DockerCommand, context_settings=CONTEXT)
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[COMMAND] [ARG...]")
@click.option("--name", help="Service name.")
@click.option("--constraint", multiple=True, metavar="LIST", help="Placement constraints.")
@click.option("-e", "--env", multiple=True, metavar="LIST", help="Set environment variables.")
@click.option("--env-file", multiple=True, metavar="LIST",
              help="Read in a file of environment variables.")
@click.option("-l", "--label", multiple=True, metavar="LIST", help="Service labels.")
@click.option("--container-label", multiple=True, metavar="LIST", help="Container labels.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.option("--init", is_flag=True, help="Use an init inside each service container.")
@shared_options
@pass_session
def create(session: Session, **options: Any) -> None:
    """Create a new service."""
    try:
        kwargs = create_kwargs(options)
    except errors.InvalidArgument as exc:
        raise StatusError(f"{exc}", 125) from None
    image = options["image"]
    service = session.client.services.create(image, **kwargs)
    click.echo(service.id)
    _converge(service, options)


@click.command("update", cls=DockerCommand, context_settings=CONTEXT)
@click.argument("service")
@click.option("--image", help="Service image tag.")
@click.option("--args", help="Service command args.")
@click.option("--force", is_flag=True, help="Force update even if no changes require it.")
@click.option("--rollback", is_flag=True, help="Rollback to previous specification.")
@click.option("--env-add", multiple=True, metavar="LIST", help="Add or update an environment variable.")
@click.option("--env-rm", multiple=True, metavar="LIST", help="Remove an environment variable.")
@click.option("--constraint-add", multiple=True, metavar="LIST",
              help="Add or update a placement constraint.")
@click.option("--constraint-rm", multiple=True, metavar="LIST", help="Remove a constraint.")
@click.option("--label-add", multiple=True, metavar="LIST", help="Add or update a service label.")
@click.option("--label-rm", multiple=True, metavar="LIST", help="Remove a label by its key.")
@click.option("--container-label-add", multiple=True, metavar="LIST",
              help="Add or update a container label.")
@click.option("--container-label-rm", multiple=True, metavar="LIST",
              help="Remove a container label by its key.")
@shared_options
@pass_session
def update(session: Session, service: str, **options: Any) -> None:
    """Update a service."""
    target = session.client.services.get(service)
    if options["rollback"]:
        target.rollback()
        click.echo(service)
        _converge(target, options, verify=False)
        return
    if options.get("args") is not None:
        options["args"] = split_command(options["args"])
    try:
        kwargs = update_kwargs(target.attrs, options)
    except errors.InvalidArgument as exc:
        raise StatusError(f"{exc}", 125) from None
    target.update(force_update=options["force"], **kwargs)
    click.echo(service)
    _converge(target, options)


@click.command("rollback", cls=DockerCommand)
@click.argument("service")
@click.option("-d", "--detach", is_flag=True,
              help="Exit immediately instead of waiting for the service to converge.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")
@pass_session
def rollback(session: Session, service: str, detach: bool, quiet: bool) -> None:
    """Revert changes to a service's configuration."""
    target = session.client.services.get(service).rollback()
    click.echo(service)
    _converge(target, {"detach": detach, "quiet": quiet}, verify=False)


def scale_targets(specifiers: Sequence[str]) -> list[tuple[str, int]]:
    """SERVICE=REPLICAS pairs; InvalidArgument with docker's wording for a bad one."""
    out = []
    for specifier in specifiers:
        name, sep, value = specifier.partition("=")
        if not sep or not name:
            raise errors.InvalidArgument(
                f"invalid scale specifier '{specifier}': expected <service>=<replicas>")
        try:
            out.append((name, count(value)))
        except errors.InvalidArgument as exc:
            raise errors.InvalidArgument(f"invalid replicas value {value}: {exc}") from None
    return out


@click.command("scale", cls=DockerCommand)
@click.argument("specifiers", nargs=-1, required=True, metavar="SERVICE=REPLICAS...")
@click.option("-d", "--detach", is_flag=True,
              help="Exit immediately instead of waiting for the service to converge.")
@pass_session
def scale(session: Session, specifiers: tuple[str, ...], detach: bool) -> None:
    """Scale one or multiple replicated services."""
    try:
        targets = scale_targets(specifiers)
    except errors.InvalidArgument as exc:
        raise StatusError(f"{exc}", 1) from None
    failed = False
    scaled = []
    for name, replicas in targets:
        try:
            service = session.client.services.get(name).scale(replicas)
        except errors.KranError as exc:
            click.echo(error_line(exc), err=True)
            failed = True
            continue
        click.echo(f"{name} scaled to {replicas}")
        scaled.append(service)
    for service in scaled:
        _converge(service, {"detach": detach})
    if failed:
        sys.exit(1)


@click.command("ls", cls=DockerCommand)
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="FILTER",
              help="Filter output based on conditions provided.")
@pass_session
def list_services(session: Session, quiet: bool, filters: tuple[str, ...]) -> None:
    """List services."""
    services = session.client.services.list(filters=parse_filters(filters))
    if quiet:
        for service in sorted(services, key=lambda s: s.name):
            click.echo(service.id)
        return
    click.echo(services_table(services), nl=False)


@click.command("ps", cls=DockerCommand)
@click.argument("services", nargs=-1, required=True)
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only display task IDs.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="FILTER",
              help="Filter output based on conditions provided.")
@pass_session
def list_tasks(session: Session, services: tuple[str, ...], no_trunc: bool, quiet: bool,
               filters: tuple[str, ...]) -> None:
    """List the tasks of one or more services."""
    wanted = parse_filters(filters)
    tasks: list[dict[str, Any]] = []
    failures = []
    for name in services:
        try:
            tasks += session.client.services.get(name).tasks(wanted)
        except errors.NotFound as exc:
            failures.append(exc)
    if quiet:
        for task in tasks:
            click.echo(task["ID"] if no_trunc else task["ID"][:12])
    elif tasks or not failures:
        click.echo(tasks_table(tasks, no_trunc, time.time()), nl=False)
    for exc in failures:
        click.echo(error_line(exc), err=True)
    if failures:
        sys.exit(1)


@click.command("inspect", cls=DockerCommand)
@click.argument("services", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", metavar="TEMPLATE",
              help="Format the output using a Go template.")
@click.option("--pretty", "pretty_", is_flag=True,
              help="Print the information in a human friendly format.")
@pass_session
def inspect_services(session: Session, services: tuple[str, ...], fmt: str | None,
                     pretty_: bool) -> None:
    """Display detailed information on one or more services."""
    inspect_all(session.client.services.get, services, fmt, pretty if pretty_ else None)


@click.command("rm", cls=DockerCommand)
@click.argument("services", nargs=-1, required=True)
@pass_session
def remove(session: Session, services: tuple[str, ...]) -> None:
    """Remove one or more services."""
    failed = False
    for name in services:
        try:
            session.client.services.get(name).remove()
        except errors.KranError as exc:
            click.echo(error_line(exc), err=True)
            failed = True
            continue
        click.echo(name)
    if failed:
        sys.exit(1)


def log_prefix(line: Any, service_name: str, no_trunc: bool, task_ids: bool) -> str:
    """docker's context: "web.1.<task12>@h1" (without the task id with --no-task-ids)."""
    task = "" if not task_ids else "." + (line.task_id if no_trunc else line.task_id[:12])
    return f"{service_name}.{line.slot}{task}@{line.node_name}"


@click.command("logs", cls=DockerCommand)
@click.argument("service")
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("-n", "--tail", default="all", type=CheckedType("lines", _tail),
              help='Number of lines to show from the end of the logs (default "all").')
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.option("--since", type=CheckedType("time", parse_time),
              help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative '
                   '(e.g. "42m" for 42 minutes).')
@click.option("--no-task-ids", is_flag=True, help="Do not include task IDs in output.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("--raw", is_flag=True, help="Do not neatly format logs.")
@pass_session
def logs(session: Session, service: str, follow: bool, tail: str, timestamps: bool,
         since: float | None, no_task_ids: bool, no_trunc: bool, raw: bool) -> None:
    """Fetch the logs of a service."""
    target = session.client.services.get(service)
    try:
        for line in target.logs(follow=follow, tail=tail, since=since):
            data = line.data
            if not raw:
                data = f"{log_prefix(line, target.name, no_trunc, not no_task_ids)}    | " \
                    .encode() + data
            if timestamps:
                data = f"{line.time} ".encode() + data
            write_all(STDERR if line.stream == "stderr" else STDOUT, data)
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C ends a follow, quietly, as docker exits on a signal


@click.group("service")
def service_group() -> None:
    """Manage services."""


for _command in (create, update, rollback, scale, list_services, list_tasks, inspect_services,
                 remove, logs):
    service_group.add_command(_command)
service_group.add_command(list_services, "list")
service_group.add_command(remove, "remove")
