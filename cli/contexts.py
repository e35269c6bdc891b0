"""`kran context create/ls/use/rm/inspect/show`, as docker's context commands.

A context names the controllers of one cluster (see kran/client/contexts.py
for where they are kept and which one a command uses).
"""

from __future__ import annotations

import json
from typing import Any

import click

from cli.flags import DockerCommand, StatusError
from cli.inspecting import inspect_all, parse_format
from cli.output import table
from cli.session import Session, pass_session
from kran import errors
from kran.client import Context, ContextStore
from kran.defaults import HOST_ENV


def _row(context: Context, current: str) -> dict[str, Any]:
    """A context as `context ls --format` sees it."""
    return {"Name": context.name, "Description": context.description,
            "KranEndpoint": context.host, "Current": context.name == current,
            "Error": context.error}


def contexts_table(contexts: list[Context], current: str) -> str:
    """The `context ls` table; the context in use is marked " *"."""
    rows = [[c.name + (" *" if c.name == current else ""), c.description, c.host, c.error]
            for c in contexts]
    return table(["NAME", "DESCRIPTION", "KRAN ENDPOINT", "ERROR"], rows)


@click.group("context")
def context_group() -> None:
    """Manage contexts."""


@context_group.command("create", cls=DockerCommand)
@click.argument("name")
@click.option("--host", "hosts", metavar="HOST:PORT[,HOST:PORT...]", required=True,
              help="The cluster's controllers, tried in turn")
@click.option("--description", default="", help="Description of the context")
def create(name: str, hosts: str, description: str) -> None:
    """Create a context."""
    ContextStore().create(name, hosts, description)
    click.echo(name)
    click.echo(f'Successfully created context "{name}"', err=True)


@context_group.command("ls", cls=DockerCommand)
@click.option("-q", "--quiet", is_flag=True, help="Only show context names")
@click.option("--format", "fmt", metavar="STRING",
              help="Format output using a custom template: 'json' or a Go template")
@pass_session
def list_contexts(session: Session, quiet: bool, fmt: str | None) -> None:
    """List contexts."""
    store = ContextStore()
    current = store.name_in_effect(session.host, session.context)
    contexts = store.list()
    if quiet:
        for context in contexts:
            click.echo(context.name)
    elif fmt == "json":
        for context in contexts:
            click.echo(json.dumps(_row(context, current), separators=(",", ":")))
    elif fmt:
        template = parse_format(fmt)
        for context in contexts:
            click.echo(template.render(_row(context, current)))
    else:
        click.echo(contexts_table(contexts, current), nl=False)


@context_group.command("use", cls=DockerCommand)
@click.argument("name")
def use(name: str) -> None:
    """Set the current context."""
    store = ContextStore()
    store.use(name)
    click.echo(name)
    click.echo(f'Current context is now "{name}"', err=True)
    if store.environ.get(HOST_ENV) and name != "default":
        click.echo(f"Warning: {HOST_ENV} environment variable overrides the active context. "
                   f'To use "{name}", either set the global --context flag, or unset '
                   f"{HOST_ENV} environment variable.", err=True)


@context_group.command("rm", cls=DockerCommand)
@click.argument("names", metavar="CONTEXT [CONTEXT...]", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force the removal of a context in use")
@pass_session
def remove(session: Session, names: tuple[str, ...], force: bool) -> None:
    """Remove one or more contexts."""
    store = ContextStore()
    current = store.name_in_effect(session.host, session.context)
    failures = []
    for name in names:
        try:
            if name == current and name != "default" and not force:
                raise errors.FailedPrecondition(
                    f'context "{name}" is in use, set -f flag to force remove')
            store.remove(name)
        except errors.KranError as exc:
            failures.append(f"{name}: {exc}" if name == "default" else str(exc))
            continue
        click.echo(name)
    if failures:
        raise StatusError("\n".join(failures), 1)


@context_group.command("inspect", cls=DockerCommand)
@click.argument("names", metavar="[CONTEXT...]", nargs=-1)
@click.option("-f", "--format", "fmt", metavar="STRING",
              help="Format output using a custom template")
@pass_session
def inspect(session: Session, names: tuple[str, ...], fmt: str | None) -> None:
    """Display detailed information on one or more contexts (the one in use by default)."""
    store = ContextStore()
    wanted = names or (store.name_in_effect(session.host, session.context),)
    inspect_all(store.get, wanted, fmt)


@context_group.command("show", cls=DockerCommand)
@pass_session
def show(session: Session) -> None:
    """Print the name of the current context."""
    click.echo(ContextStore().name_in_effect(session.host, session.context))
