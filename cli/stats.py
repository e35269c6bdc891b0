"""What a container does and changed: `top`, `stats`, `diff` and `commit`."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Any

import click

from cli.flags import DockerCommand
from cli.output import short_id, table
from cli.session import Session, error_line, pass_session
from kran import errors
from kran.client import Container
from kran.units import bytes_size, human_size

STATS_HEADER = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                "BLOCK I/O", "PIDS"]
_KINDS = {0: "C", 1: "A", 2: "D"}
# docker stats redraws in place: cursor home, clear screen.
_CLEAR = "\033[2J\033[H"


def cpu_percent(sample: dict[str, Any]) -> float:
    """docker's CPU %: the container's share of host CPU time between two samples."""
    cpu, pre = sample["cpu_stats"], sample["precpu_stats"]
    cpu_delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    system_delta = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
    if cpu_delta <= 0 or system_delta <= 0 or not pre["system_cpu_usage"]:
        return 0.0
    return cpu_delta / system_delta * (cpu["online_cpus"] or 1) * 100.0


def stats_row(sample: dict[str, Any], no_trunc: bool = False) -> list[str]:
    """One docker stats line from a Docker-shaped sample."""
    memory = sample["memory_stats"]
    usage, limit = memory.get("usage", 0), memory.get("limit", 0)
    net = sample.get("networks") or {}
    rx = sum(n.get("rx_bytes", 0) for n in net.values())
    tx = sum(n.get("tx_bytes", 0) for n in net.values())
    blkio = sample["blkio_stats"].get("io_service_bytes_recursive") or []
    read = sum(e["value"] for e in blkio if e["op"].lower() == "read")
    write = sum(e["value"] for e in blkio if e["op"].lower() == "write")
    name = sample["name"][1:] if len(sample["name"]) > 1 else "--"
    return [
        sample["id"] if no_trunc else short_id(sample["id"]),
        name,
        f"{cpu_percent(sample):.2f}%",
        f"{bytes_size(usage)} / {bytes_size(limit)}",
        f"{usage / limit * 100 if limit else 0.0:.2f}%",
        f"{human_size(rx)} / {human_size(tx)}",
        f"{human_size(read)} / {human_size(write)}",
        str(sample["pids_stats"].get("current", 0)),
    ]


def stats_table(samples: Sequence[dict[str, Any]], no_trunc: bool = False) -> str:
    """The docker stats table."""
    return table(STATS_HEADER, [stats_row(s, no_trunc) for s in samples])


def second_sample(container: Container) -> dict[str, Any]:
    """A sample with the one before it as precpu_stats, so CPU % means something."""
    samples = container.stats(stream=True)
    try:
        first = next(samples)
        return next(samples, first)
    finally:
        samples.close()


def _targets(session: Session, names: Sequence[str], all_: bool) -> list[Container]:
    if names:
        return [session.client.containers.get(n) for n in names]
    return session.client.containers.list(all=all_)


@click.command("stats", cls=DockerCommand)
@click.argument("containers", nargs=-1)
@click.option("-a", "--all", "all_", is_flag=True,
              help="Show all containers (default shows just running).")
@click.option("--no-stream", is_flag=True,
              help="Disable streaming stats and only pull the first result.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@pass_session
def stats(session: Session, containers: tuple[str, ...], all_: bool, no_stream: bool,
          no_trunc: bool) -> None:
    """Display a live stream of container(s) resource usage statistics."""
    targets = _targets(session, containers, all_)
    latest: dict[str, dict[str, Any]] = {}
    failures: list[errors.KranError] = []

    def sample(container: Container) -> None:
        try:
            if no_stream:
                latest[container.id] = second_sample(container)
                return
            for item in container.stats(stream=True):
                latest[container.id] = item
        except errors.KranError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=sample, args=(c,), daemon=True) for c in targets]
    for thread in threads:
        thread.start()
    if no_stream:
        for thread in threads:
            thread.join()
        ordered = [latest[c.id] for c in targets if c.id in latest]
        click.echo(stats_table(ordered, no_trunc), nl=False)
    else:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=1.0)
            ordered = [latest[c.id] for c in targets if c.id in latest]
            click.echo(_CLEAR + stats_table(ordered, no_trunc), nl=False)
    for exc in failures:
        click.echo(error_line(exc), err=True)
    if failures:
        sys.exit(1)


@click.command("top", cls=DockerCommand)
@click.argument("container")
@pass_session
def top(session: Session, container: str) -> None:
    """Display the running processes of a container."""
    result = Container({"Id": container}, session.client, session.client.containers).top()
    click.echo(table(result["Titles"], result["Processes"]), nl=False)


def diff_lines(changes: Sequence[dict[str, Any]]) -> str:
    """docker diff's lines: "C /etc", "A /etc/x", "D /tmp/y"."""
    return "".join(f"{_KINDS.get(c['Kind'], 'C')} {c['Path']}\n" for c in changes)


@click.command("diff", cls=DockerCommand)
@click.argument("container")
@pass_session
def diff(session: Session, container: str) -> None:
    """Inspect changes to files or directories on a container's filesystem."""
    changes = Container({"Id": container}, session.client, session.client.containers).diff()
    click.echo(diff_lines(changes), nl=False)


@click.command("commit", cls=DockerCommand)
@click.argument("container")
@click.argument("repository", required=False, metavar="[REPOSITORY[:TAG]]")
@click.option("-a", "--author", default="",
              help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").')
@click.option("-c", "--change", "changes", multiple=True,
              help="Apply Dockerfile instruction to the created image.")
@click.option("-m", "--message", default="", help="Commit message.")
@click.option("-p", "--pause/--no-pause", default=True,
              help="Pause container during commit.")
@pass_session
def commit(session: Session, container: str, repository: str | None, author: str,
           changes: tuple[str, ...], message: str, pause: bool) -> None:
    """Create a new image from a container's changes."""
    target = Container({"Id": container}, session.client, session.client.containers)
    image = target.commit(repository=repository, message=message, author=author,
                          changes=list(changes), pause=pause)
    click.echo(image.id)


COMMANDS = (stats, top, diff, commit)
