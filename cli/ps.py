"""`kran ps` (`container ls`): docker's container table, filters and ids."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import click

from cli.flags import DockerCommand
from cli.images import parse_filters
from cli.inspecting import parse_format
from cli.output import created_since, ellipsis, short_id, table
from cli.session import Session, pass_session
from kran import containerinspect
from kran.client import Container

HEADER = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
COMMAND_WIDTH = 20


def go_quote(text: str) -> str:
    """Go's strconv.Quote: double quotes, escapes for quotes, backslashes and controls."""
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def command_cell(command: str, no_trunc: bool) -> str:
    """The COMMAND cell: cut to 20 characters with "…" unless no_trunc, then quoted."""
    return go_quote(command if no_trunc else ellipsis(command, COMMAND_WIDTH))


def image_cell(summary: dict[str, Any], no_trunc: bool) -> str:
    """The IMAGE cell: the reference as given; an image id shown short unless no_trunc."""
    image = summary["Image"]
    if not image:
        return "<no image>"
    if not no_trunc and short_id(summary["ImageID"]) == short_id(image):
        return short_id(image)
    return image


def ps_row(container: Container, no_trunc: bool, show_node: bool, now: float | None) -> list[str]:
    """One container's cells in the docker ps table."""
    summary = containerinspect.summary(container.message, now)
    row = [
        container.id if no_trunc else short_id(container.id),
        image_cell(summary, no_trunc),
        command_cell(summary["Command"], no_trunc),
        created_since(summary["Created"], now),
        summary["Status"],
        "",
        container.name,
    ]
    if show_node:
        row.append(container.node_name or container.node_id)
    return row


def ps_table(containers: Sequence[Container], *, no_trunc: bool = False,
             show_node: bool = False, now: float | None = None) -> str:
    """The docker ps table (the order given: newest first); NODE appended with show_node."""
    header = HEADER + (["NODE"] if show_node else [])
    return table(header, [ps_row(c, no_trunc, show_node, now) for c in containers])


def format_context(container: Container, no_trunc: bool, now: float | None = None) -> dict:
    """The fields --format sees, named as docker's ContainerContext names them."""
    summary = containerinspect.summary(container.message, now)
    labels = summary["Labels"] or {}
    return {
        "ID": container.id if no_trunc else short_id(container.id),
        "Image": image_cell(summary, no_trunc),
        "Command": command_cell(summary["Command"], no_trunc),
        "CreatedAt": container.attrs["Created"],
        "RunningFor": created_since(summary["Created"], now),
        "Ports": "",
        "State": summary["State"],
        "Status": summary["Status"],
        "Names": container.name,
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Mounts": "",
        "Networks": "",
        "Size": "",
        "Node": container.node_name or container.node_id,
    }


def formatted(containers: Iterable[Container], fmt: str, no_trunc: bool) -> str:
    """Each container through a Go template (or `json`), one line each."""
    rows = [format_context(c, no_trunc) for c in containers]
    if fmt == "json":
        return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
    template = parse_format(fmt)
    return "".join(template.render(r) + "\n" for r in rows)


@click.command("ls", cls=DockerCommand)
@click.option("-a", "--all", "all_", is_flag=True,
              help="Show all containers (default shows just running).")
@click.option("-f", "--filter", "filters", multiple=True, metavar="FILTER",
              help="Filter output: status=, name=, label=, ancestor=, node=, id=.")
@click.option("--format", "fmt", metavar="TEMPLATE",
              help="Format output using a Go template, or json.")
@click.option("-n", "--last", type=int, default=-1,
              help="Show n last created containers (includes all states).")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
@pass_session
def list_containers(session: Session, all_: bool, filters: tuple[str, ...], fmt: str | None,
                    last: int, latest: bool, no_trunc: bool, quiet: bool) -> None:
    """List containers."""
    client = session.client
    limit = 1 if latest and last == -1 else last
    containers = client.containers.list(all=all_, filters=parse_filters(filters), limit=limit)
    if quiet:
        for container in containers:
            click.echo(container.id if no_trunc else short_id(container.id))
        return
    if fmt and fmt != "table":
        click.echo(formatted(containers, fmt, no_trunc), nl=False)
        return
    show_node = len({c.node_id for c in containers}) > 1 or len(client.nodes.list()) > 1
    click.echo(ps_table(containers, no_trunc=no_trunc, show_node=show_node), nl=False)
