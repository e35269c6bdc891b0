"""`kran node ls/inspect/update/rm`, as docker's node commands."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import click

from cli.containers import each
from cli.flags import DockerCommand
from cli.inspecting import inspect_all
from cli.output import bytes_size, table
from cli.session import Session, pass_session
from kran.client import Node


def natural_key(text: str) -> list[Any]:
    """Sort key that orders "node2" before "node10", as docker node ls does."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def nodes_table(nodes: Sequence[Node]) -> str:
    """The `node ls` table: ID, HOSTNAME, STATUS, AVAILABILITY, ADDRESS, ENGINE VERSION."""
    rows = []
    for node in sorted(nodes, key=lambda n: natural_key(n.name)):
        rows.append([
            node.id,
            node.name,
            node.state.title(),
            node.availability.title(),
            node.attrs["Status"].get("Endpoint", ""),
            node.attrs["Description"]["Engine"]["EngineVersion"],
        ])
    return table(["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "ADDRESS", "ENGINE VERSION"],
                 rows)


def pretty(attrs: dict[str, Any]) -> str:
    """`docker node inspect --pretty` for one node."""
    desc, status, spec = attrs["Description"], attrs["Status"], attrs["Spec"]
    lines = [f"ID:\t\t\t{attrs['ID']}"]
    if spec.get("Labels"):
        lines.append("Labels:")
        lines.extend(f" - {k}={v}" for k, v in sorted(spec["Labels"].items()))
    lines += [
        f"Hostname:\t\t{desc['Hostname']}",
        f"Joined at:\t\t{attrs['CreatedAt']}",
        f"Updated at:\t\t{attrs['UpdatedAt']}",
        "Status:",
        f" State:\t\t\t{status['State'].title()}",
    ]
    if status.get("Message"):
        lines.append(f" Message:\t\t{status['Message']}")
    lines += [
        f" Availability:\t\t{spec['Availability'].title()}",
        f" Address:\t\t{status.get('Endpoint', status['Addr'])}",
        "Platform:",
        f" Operating System:\t{desc['Platform']['OS']}",
        f" Architecture:\t\t{desc['Platform']['Architecture']}",
        "Resources:",
        f" CPUs:\t\t\t{desc['Resources']['NanoCPUs'] // 1_000_000_000}",
        f" Memory:\t\t{bytes_size(desc['Resources']['MemoryBytes'])}",
    ]
    allocated = attrs.get("Allocated") or {}
    if allocated.get("Containers"):
        lines += [
            "Allocated:",
            f" CPUs:\t\t\t{allocated['NanoCPUs'] / 1_000_000_000:g}",
            f" Memory:\t\t{bytes_size(allocated['MemoryBytes'])}",
            f" Containers:\t\t{allocated['Containers']}",
        ]
        if allocated.get("Ports"):
            lines.append(f" Ports:\t\t\t{', '.join(allocated['Ports'])}")
    lines += [
        f"Engine Version:\t\t{desc['Engine']['EngineVersion']}",
        f"Kernel Version:\t\t{desc['Engine'].get('KernelVersion', '')}",
    ]
    engine_labels = desc["Engine"].get("Labels") or {}
    if engine_labels:
        lines.append("Engine Labels:")
        lines.extend(f" - {k}={v}" for k, v in sorted(engine_labels.items()))
    return "\n".join(lines) + "\n"


@click.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@pass_session
def list_nodes(session: Session, quiet: bool) -> None:
    """List nodes in the cluster."""
    nodes = session.client.nodes.list()
    if quiet:
        for node in sorted(nodes, key=lambda n: natural_key(n.name)):
            click.echo(node.id)
        return
    click.echo(nodes_table(nodes), nl=False)


@click.command("inspect")
@click.argument("nodes", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", metavar="TEMPLATE",
              help="Format the output using a Go template.")
@click.option("--pretty", "pretty_", is_flag=True,
              help="Print the information in a human friendly format.")
@pass_session
def inspect_nodes(session: Session, nodes: tuple[str, ...], fmt: str | None,
                  pretty_: bool) -> None:
    """Display detailed information on one or more nodes."""
    inspect_all(session.client.nodes.get, nodes, fmt, pretty if pretty_ else None)


@click.group("node")
def node_group() -> None:
    """Manage nodes."""


@click.command("update", cls=DockerCommand)
@click.argument("node")
@click.option("--availability", metavar="string",
              help='Availability of the node ("active", "pause", "drain").')
@click.option("--label-add", multiple=True, metavar="list",
              help="Add or update a node label (key=value).")
@click.option("--label-rm", multiple=True, metavar="list",
              help="Remove a node label if exists.")
@pass_session
def update_node(session: Session, node: str, availability: str | None,
                label_add: tuple[str, ...], label_rm: tuple[str, ...]) -> None:
    """Update a node."""
    session.client.nodes.update(node, availability=availability, label_add=label_add,
                                label_rm=label_rm)
    click.echo(node)


@click.command("rm", cls=DockerCommand)
@click.argument("nodes", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force remove a node from the swarm.")
@pass_session
def remove_nodes(session: Session, nodes: tuple[str, ...], force: bool) -> None:
    """Remove one or more nodes from the cluster."""
    each(nodes, lambda node: session.client.nodes.remove(node, force=force))


node_group.add_command(list_nodes)
node_group.add_command(list_nodes, "list")
node_group.add_command(inspect_nodes)
node_group.add_command(update_node)
node_group.add_command(remove_nodes)
node_group.add_command(remove_nodes, "remove")
