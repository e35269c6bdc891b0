"""The container lifecycle commands: start, stop, kill, restart, rm, rename, wait,
prune and inspect, under `kran container` and at the top level as docker has them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from cli import cp, execs, logs, ps, run, stats, streams
from cli.flags import DockerCommand, StatusError
from cli.images import confirm, parse_filters
from cli.inspecting import inspect_all
from cli.output import human_size
from cli.run import DEFAULT_DETACH_KEYS
from cli.session import Session, error_line, pass_session
from kran import errors
from kran.client import ConnectionFailed, Container


def named(session: Session, name: str) -> Container:
    """A container known only by the name (or id) the user gave: calls resolve it."""
    return Container({"Id": name}, session.client, session.client.containers)


def each(names: Sequence[str], action: Callable[[str], Any], *,
         ignore_missing: bool = False) -> list[str]:
    """Run action on every name, echoing the name on success (docker's multi-container way).

    Failures are collected and printed after the loop, and the command exits
    1; with ignore_missing a missing container is printed but is no failure.
    Returns the names that failed.
    """
    failures: list[errors.KranError] = []
    failed = []
    for name in names:
        try:
            action(name)
        except errors.KranError as exc:
            if isinstance(exc, ConnectionFailed):
                raise
            if ignore_missing and isinstance(exc, errors.NotFound):
                click.echo(error_line(exc), err=True)
                continue
            failures.append(exc)
            failed.append(name)
            continue
        click.echo(name)
    for exc in failures:
        click.echo(error_line(exc), err=True)
    if failures:
        sys.exit(1)
    return failed


@click.command("start", cls=DockerCommand)
@click.argument("containers", nargs=-1, required=True)
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals.")
@click.option("-i", "--interactive", is_flag=True, help="Attach container's STDIN.")
@click.option("--detach-keys", default=DEFAULT_DETACH_KEYS,
              help="Override the key sequence for detaching a container.")
@pass_session
def start(session: Session, containers: tuple[str, ...], attach: bool, interactive: bool,
          detach_keys: str) -> None:
    """Start one or more stopped containers."""
    client = session.client
    if not (attach or interactive):
        failed = []
        for name in containers:
            try:
                named(session, name).start()
            except errors.KranError as exc:
                if isinstance(exc, ConnectionFailed):
                    raise
                click.echo(error_line(exc), err=True)
                failed.append(name)
                continue
            click.echo(name)
        if failed:
            raise StatusError(f"Error: failed to start containers: {', '.join(failed)}", 1)
        return
    if len(containers) > 1:
        raise errors.InvalidArgument("you cannot start and attach multiple containers at once")
    sys.exit(start_attached(client.containers.get(containers[0]), interactive, detach_keys))


def start_attached(container: Container, interactive: bool, detach_keys: str) -> int:
    """`start -a`: attach, start, stream until the end; the exit status (0 when detached)."""
    tty = container.attrs["Config"]["Tty"]
    stdin = interactive and container.attrs["Config"]["OpenStdin"]
    if tty and stdin:
        run.check_tty(True, True)
    attached = container.attach_socket(stdin=stdin, stdout=True, stderr=True,
                                       detach_keys=detach_keys, start=True)
    streams.stream(attached, stdin=stdin, tty=tty, proxy=run.signal_forwarder(container))
    if attached.detached:
        return 0
    if attached.error:
        raise StatusError(f"Error response from daemon: {attached.error}",
                          attached.exit_code or 1)
    if attached.exit_code is not None:
        return attached.exit_code
    return container.wait()["StatusCode"]


@click.command("stop", cls=DockerCommand)
@click.argument("containers", nargs=-1, required=True)
@click.option("-s", "--signal", "signal_", help="Signal to send to the container.")
@click.option("-t", "--timeout", "--time", type=int,
              help="Seconds to wait before killing the container.")
@pass_session
def stop(session: Session, containers: tuple[str, ...], signal_: str | None,
         timeout: int | None) -> None:
    """Stop one or more running containers."""
    each(containers, lambda name: named(session, name).stop(
        timeout=timeout, signal=signal_))


@click.command("restart", cls=DockerCommand)
@click.argument("containers", nargs=-1, required=True)
@click.option("-t", "--timeout", "--time", type=int,
              help="Seconds to wait before killing the container.")
@pass_session
def restart(session: Session, containers: tuple[str, ...], timeout: int | None) -> None:
    """Restart one or more containers."""
    each(containers, lambda name: named(session, name).restart(timeout=timeout))


@click.command("kill", cls=DockerCommand)
@click.argument("containers", nargs=-1, required=True)
@click.option("-s", "--signal", "signal_", help="Signal to send to the container.")
@pass_session
def kill(session: Session, containers: tuple[str, ...], signal_: str | None) -> None:
    """Kill one or more running containers."""
    each(containers, lambda name: named(session, name).kill(signal_))


@click.command("rm", cls=DockerCommand)
@click.argument("containers", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True,
              help="Force the removal of a running container (uses SIGKILL).")
@click.option("-v", "--volumes", is_flag=True,
              help="Remove anonymous volumes associated with the container.")
@pass_session
def remove(session: Session, containers: tuple[str, ...], force: bool, volumes: bool) -> None:
    """Remove one or more containers."""
    def action(name: str) -> None:
        named(session, name).remove(v=volumes, force=force)
    each(containers, action, ignore_missing=force)


@click.command("rename", cls=DockerCommand)
@click.argument("container")
@click.argument("new_name")
@pass_session
def rename(session: Session, container: str, new_name: str) -> None:
    """Rename a container."""
    if not new_name.strip():
        raise errors.InvalidArgument("Error: neither old nor new names may be empty")
    named(session, container).rename(new_name)


@click.command("wait", cls=DockerCommand)
@click.argument("containers", nargs=-1, required=True)
@pass_session
def wait(session: Session, containers: tuple[str, ...]) -> None:
    """Block until one or more containers stop, then print their exit codes."""
    failed = False
    for name in containers:
        try:
            result = named(session, name).wait()
        except errors.KranError as exc:
            if isinstance(exc, ConnectionFailed):
                raise
            click.echo(error_line(exc), err=True)
            failed = True
            continue
        click.echo(str(result["StatusCode"]))
    if failed:
        sys.exit(1)


@click.command("prune", cls=DockerCommand)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, metavar="FILTER",
              help='Provide filter values (e.g. "label=<key>=<value>").')
@pass_session
def prune(session: Session, force: bool, filters: tuple[str, ...]) -> None:
    """Remove all stopped containers."""
    if not force and not confirm("WARNING! This will remove all stopped containers."):
        return
    report = session.client.containers.prune(filters=parse_filters(filters))
    lines = []
    if report["ContainersDeleted"]:
        lines.append("Deleted Containers:")
        lines.extend(report["ContainersDeleted"])
        lines.append("")
    lines.append(f"Total reclaimed space: {human_size(report['SpaceReclaimed'], 4)}")
    click.echo("\n".join(lines))


@click.command("inspect", cls=DockerCommand)
@click.argument("containers", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", metavar="TEMPLATE",
              help="Format the output using a Go template.")
@pass_session
def inspect_containers(session: Session, containers: tuple[str, ...], fmt: str | None) -> None:
    """Display detailed information on one or more containers."""
    inspect_all(session.client.containers.get, containers, fmt)


@click.command("inspect", cls=DockerCommand)
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", metavar="TEMPLATE",
              help="Format the output using a Go template.")
@click.option("--type", "type_", type=click.Choice(["container", "image"]),
              help="Return JSON for the specified type.")
@pass_session
def inspect_any(session: Session, names: tuple[str, ...], fmt: str | None,
                type_: str | None) -> None:
    """Return low-level information on kran objects (a container, else an image)."""
    client = session.client

    def get(name: str) -> Any:
        if type_ != "image":
            try:
                return client.containers.get(name)
            except errors.NotFound:
                if type_ == "container":
                    raise
        try:
            return client.images.get(name)
        except errors.NotFound:
            if type_ == "image":
                raise
            raise errors.NotFound(f"Error: No such object: {name}") from None
    inspect_all(get, names, fmt)


@click.group("container")
def container_group() -> None:
    """Manage containers."""


# `kran container <verb>`; cli.main puts most of these at the top level too.
for _command in (*run.COMMANDS, start, stop, restart, kill, remove, rename, wait, prune,
                 inspect_containers, *logs.COMMANDS, *execs.COMMANDS, *stats.COMMANDS,
                 *cp.COMMANDS):
    container_group.add_command(_command)
container_group.add_command(ps.list_containers)
container_group.add_command(ps.list_containers, "list")
container_group.add_command(ps.list_containers, "ps")
container_group.add_command(remove, "remove")
