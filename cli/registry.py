"""`kran pull`, `push`, `login`, `logout` and `search`: docker's registry commands.

Progress goes to stdout as docker prints it (cli.progress); a failure the
node reports in the stream prints "Error response from daemon: ..." and
exits 1. Credentials are kept in the user's config.json (0600) by login,
and the SDK sends the matching ones with each pull, push and search.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import click

from cli.output import ellipsis, table
from cli.progress import ProgressPrinter
from cli.session import Session, pass_session
from kran import errors, reference
from kran.client.credentials import Credentials, server_key
from kran.client.registry import pull_reference, push_reference

SEARCH_DESCRIPTION_WIDTH = 45
DEFAULT_SEARCH_LIMIT = 25


def printer_for(stream: TextIO, show_nodes: bool = False) -> ProgressPrinter:
    """A progress printer for stream: live when it is a terminal, plain otherwise."""
    tty = stream.isatty()
    width = 80
    if tty:
        try:
            width = os.get_terminal_size(stream.fileno()).columns
        except OSError:
            pass  # a terminal that does not tell its size keeps the usual 80 columns
    return ProgressPrinter(stream, tty, width, show_nodes)


def follow(lines: Iterable[dict[str, Any]], stream: TextIO, quiet: bool = False,
           show_nodes: bool = False) -> str | None:
    """Print a progress stream to stream (nothing when quiet); the error that ended it, if any."""
    if quiet:
        return next((line["error"] for line in lines if "error" in line), None)
    return printer_for(stream, show_nodes).show_all(lines)


def _stream_failed(message: str) -> None:
    click.echo(f"Error response from daemon: {message}", err=True)
    sys.exit(1)


def _uses_default_tag(name: str) -> bool:
    ref = reference.parse(name, default_tag=False)
    return ref.tag is None and ref.digest is None


def pull_image(session: Session, image: str, stream: TextIO, quiet: bool = False,
               node: str | None = None, platform: str | None = None) -> str | None:
    """Pull image as `kran run` does (progress on stream); the error that ended it, if any."""
    lines = session.client.images.pull_progress(image, platform=platform, node=node)
    return follow(lines, stream, quiet)


@click.command("pull")
@click.argument("name", metavar="NAME[:TAG|@DIGEST]")
@click.option("-a", "--all-tags", is_flag=True,
              help="Download all tagged images in the repository.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output.")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Set platform if server is multi-platform capable.")
@click.option("--node", metavar="NODE", help="Pull onto this node (id, id prefix or hostname).")
@click.option("--all-nodes", is_flag=True, help="Pull onto every Ready node.")
@pass_session
def pull(session: Session, name: str, all_tags: bool, quiet: bool, platform: str | None,
         node: str | None, all_nodes: bool) -> None:
    """Download an image from a registry."""
    if node and all_nodes:
        raise errors.InvalidArgument("--node and --all-nodes cannot be used together")
    ref = pull_reference(name, all_tags=all_tags)
    if not quiet and not all_tags and _uses_default_tag(name):
        click.echo(f"Using default tag: {reference.DEFAULT_TAG}")
    lines = session.client.images.pull_progress(name, all_tags=all_tags, platform=platform,
                                                node=node, all_nodes=all_nodes)
    error = follow(lines, sys.stdout, quiet, show_nodes=all_nodes)
    if error is not None:
        _stream_failed(error)
    click.echo(ref.full())


@click.command("push")
@click.argument("name", metavar="NAME[:TAG]")
@click.option("-a", "--all-tags", is_flag=True, help="Push all tags of an image to the repository.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output.")
@click.option("--node", metavar="NODE", help="Push from this node (id, id prefix or hostname).")
@pass_session
def push(session: Session, name: str, all_tags: bool, quiet: bool, node: str | None) -> None:
    """Upload an image to a registry."""
    ref = push_reference(name, all_tags=all_tags)
    if not quiet and not all_tags and _uses_default_tag(name):
        click.echo(f"Using default tag: {reference.DEFAULT_TAG}")
    lines = session.client.images.push_progress(name, all_tags=all_tags, node=node)
    error = follow(lines, sys.stdout, quiet)
    if error is not None:
        _stream_failed(error)
    if quiet:
        click.echo(ref.full())


def _prompt_credentials(username: str | None, stored: Credentials | None) -> tuple[str, str]:
    """Ask for what was not given, as docker login does: user on stdout, password without echo."""
    if not sys.stdin.isatty():
        raise errors.InvalidArgument("Error: Cannot perform an interactive login from a "
                                     "non TTY device")
    if not username:
        default = stored.username if stored else ""
        prompt = f"Username ({default}): " if default else "Username: "
        click.echo(prompt, nl=False)
        username = sys.stdin.readline().strip() or default
        if not username:
            raise errors.InvalidArgument("Error: Non-null Username Required")
    password = getpass.getpass("Password: ")
    if not password:
        raise errors.InvalidArgument("Error: Password Required")
    return username, password


@click.command("login")
@click.argument("server", required=False)
@click.option("-u", "--username", help="Username.")
@click.option("-p", "--password", help="Password.")
@click.option("--password-stdin", is_flag=True, help="Take the password from stdin.")
@pass_session
def login(session: Session, server: str | None, username: str | None, password: str | None,
          password_stdin: bool) -> None:
    """Log in to a registry (default: Docker Hub, through the cluster's mirror)."""
    if password is not None and password_stdin:
        raise errors.InvalidArgument("--password and --password-stdin are mutually exclusive")
    if password_stdin:
        if not username:
            raise errors.InvalidArgument("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password is not None:
        click.echo("WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
                   err=True)
    key = server_key(server)
    client = session.client
    stored = client.credentials.get(key)
    if not username and not password and stored is not None:
        click.echo("Authenticating with existing credentials...")
        try:
            client.login(stored.username, stored.password, key, stored.identity_token)
        except errors.KranError as exc:
            click.echo(f"Login did not succeed, error: {exc}", err=True)
        else:
            click.echo("Login Succeeded")
            return
    if not username or not password:
        username, password = _prompt_credentials(username, stored)
    answer = client.login(username, password, key)
    client.credentials.store(key, Credentials(username=username, password=password,
                                              identity_token=answer["IdentityToken"]))
    click.echo(f"WARNING! Your credentials are stored unencrypted in "
               f"'{client.credentials.path}'.", err=True)
    click.echo(answer["Status"])


@click.command("logout")
@click.argument("server", required=False)
@pass_session
def logout(session: Session, server: str | None) -> None:
    """Log out from a registry (default: Docker Hub)."""
    key = server_key(server)
    if session.client.credentials.erase(key):
        click.echo(f"Removing login credentials for {key}")
    else:
        click.echo(f"Not logged in to {key}")


def search_table(results: Iterable[dict[str, Any]], no_trunc: bool = False) -> str:
    """docker search's table: NAME DESCRIPTION STARS OFFICIAL."""
    rows = []
    for result in results:
        description = " ".join((result.get("description") or "").split())
        if not no_trunc:
            description = ellipsis(description, SEARCH_DESCRIPTION_WIDTH)
        rows.append([result["name"], description, str(result.get("star_count", 0)),
                     "[OK]" if result.get("is_official") else ""])
    return table(["NAME", "DESCRIPTION", "STARS", "OFFICIAL"], rows)


@click.command("search")
@click.argument("term")
@click.option("--limit", type=int, default=DEFAULT_SEARCH_LIMIT, show_default=True,
              help="Max number of search results.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@pass_session
def search(session: Session, term: str, limit: int, no_trunc: bool) -> None:
    """Search a registry's catalog for images ("HOST:PORT/TERM" searches that registry)."""
    results = session.client.images.search(term, limit=limit)
    click.echo(search_table(results, no_trunc), nl=False)


COMMANDS = (pull, push, login, logout, search)
