"""`kran images`, `kran image ...`, `tag`, `rmi`, `history`: docker's image commands."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

from cli import image_io, registry
from cli.inspecting import inspect_all
from cli.output import created_since, ellipsis, human_size, rfc3339, short_id, table
from cli.session import Session, error_line, node_option, pass_session
from kran import errors
from kran.client import ConnectionFailed, Image

NONE = "<none>"


def split_repo_tag(ref: str) -> tuple[str, str]:
    """ "repo[:tag]" into (repo, tag); a colon before the last slash is a port."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, NONE
    return name, tag


def split_repo_digest(ref: str) -> tuple[str, str]:
    """ "repo@sha256:..." into (repo, digest)."""
    repo, _, digest = ref.partition("@")
    return repo, digest


def image_rows(image: Image, digests: bool) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) rows for an image, as docker images lays them out.

    One row per repository tag; with digests, one per tag and digest; a
    repository known only by digest gets a `<none>` tag; an untagged image
    one `<none>` row.
    """
    tags = [t for t in image.attrs.get("RepoTags") or [] if t != "<none>:<none>"]
    repo_digests = [d for d in image.attrs.get("RepoDigests") or [] if "@" in d]
    if not tags and not repo_digests:
        return [(NONE, NONE, NONE)]
    by_repo_tags: dict[str, list[str]] = {}
    for ref in tags:
        repo, tag = split_repo_tag(ref)
        by_repo_tags.setdefault(repo, []).append(tag)
    by_repo_digests: dict[str, list[str]] = {}
    for ref in repo_digests:
        repo, digest = split_repo_digest(ref)
        by_repo_digests.setdefault(repo, []).append(digest)
    rows = []
    for repo, repo_tags in by_repo_tags.items():
        shown = by_repo_digests.pop(repo, []) if digests else []
        by_repo_digests.pop(repo, None)
        for tag in repo_tags:
            rows.extend((repo, tag, d) for d in shown or [NONE])
    for repo, repo_digest_list in by_repo_digests.items():
        if digests:
            rows.extend((repo, NONE, d) for d in repo_digest_list)
        else:
            rows.append((repo, NONE, ""))
    return rows


def newest_first(images: Iterable[Image]) -> list[Image]:
    """Images by creation time, newest first (the order docker lists them in)."""
    return sorted(images, key=lambda image: image.attrs.get("Created") or 0, reverse=True)


def images_table(images: Sequence[Image], *, digests: bool = False, no_trunc: bool = False,
                 show_node: bool = False, now: float | None = None) -> str:
    """The `docker images` table; a NODE column is appended with show_node."""
    header = ["REPOSITORY", "TAG"] + (["DIGEST"] if digests else []) + \
        ["IMAGE ID", "CREATED", "SIZE"] + (["NODE"] if show_node else [])
    rows = []
    for image in newest_first(images):
        image_id = image.id if no_trunc else short_id(image.id)
        for repo, tag, digest in image_rows(image, digests):
            row = [repo, tag] + ([digest] if digests else []) + [
                image_id, created_since(image.attrs.get("Created") or 0, now),
                human_size(image.attrs.get("Size") or 0)]
            if show_node:
                row.append(image.node_name or image.node_id)
            rows.append(row)
    return table(header, rows)


def quiet_ids(images: Sequence[Image], no_trunc: bool = False) -> list[str]:
    """Each image id once, newest first (`-q`)."""
    seen: dict[str, None] = {}
    for image in newest_first(images):
        seen.setdefault(image.id if no_trunc else short_id(image.id), None)
    return list(seen)


def history_table(items: Sequence[dict[str, Any]], *, human: bool = True,
                  no_trunc: bool = False, now: float | None = None) -> str:
    """The `docker history` table from Docker-shaped history entries."""
    rows = []
    for item in items:
        created_by = item.get("CreatedBy", "").replace("\t", " ")
        rows.append([
            item["Id"] if no_trunc else short_id(item["Id"]),
            created_since(item["Created"], now) if human else rfc3339(item["Created"]),
            created_by if no_trunc else ellipsis(created_by, 45),
            human_size(item["Size"]) if human else str(item["Size"]),
            item.get("Comment", ""),
        ])
    return table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], rows)


def parse_filters(values: Iterable[str]) -> dict[str, list[str]]:
    """-f key=value options as {key: [values]}."""
    filters: dict[str, list[str]] = {}
    for value in values:
        key, sep, arg = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"bad format of filter (expected name=value): {value!r}",
                                     param_hint="'-f' / '--filter'")
        filters.setdefault(key.strip().lower(), []).append(arg)
    return filters


@click.command("ls")
@click.argument("repository", required=False)
@click.option("-a", "--all", "all_", is_flag=True,
              help="Show all images (default hides intermediate images).")
@click.option("--digests", is_flag=True, help="Show digests.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="FILTER",
              help="Filter output: dangling=true|false, reference=PATTERN, label=KEY[=VALUE].")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@node_option
@pass_session
def list_images(session: Session, repository: str | None, all_: bool, digests: bool,
                filters: tuple[str, ...], no_trunc: bool, quiet: bool, node: str | None) -> None:
    """List images."""
    client = session.client
    images = client.images.list(name=repository, all=all_, filters=parse_filters(filters),
                                node=node)
    if quiet:
        for image_id in quiet_ids(images, no_trunc):
            click.echo(image_id)
        return
    show_node = not node and (len({i.node_id for i in images}) > 1
                              or len(client.nodes.list()) > 1)
    click.echo(images_table(images, digests=digests, no_trunc=no_trunc, show_node=show_node),
               nl=False)


@click.command("inspect")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", metavar="TEMPLATE",
              help="Format the output using a Go template ({{.Id}}, {{json .Config}}).")
@node_option
@pass_session
def inspect_images(session: Session, images: tuple[str, ...], fmt: str | None,
                   node: str | None) -> None:
    """Display detailed information on one or more images."""
    inspect_all(lambda name: session.client.images.get(name, node=node), images, fmt)


@click.command("history")
@click.argument("image")
@click.option("-H", "--human/--no-human", default=True, show_default=True,
              help="Print sizes and dates in human readable format.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@node_option
@pass_session
def history(session: Session, image: str, human: bool, no_trunc: bool, quiet: bool,
            node: str | None) -> None:
    """Show the history of an image."""
    items = session.client.images.get(image, node=node).history()
    if quiet:
        for item in items:
            click.echo(item["Id"] if no_trunc else short_id(item["Id"]))
        return
    click.echo(history_table(items, human=human, no_trunc=no_trunc), nl=False)


@click.command("tag")
@click.argument("source")
@click.argument("target")
@node_option
@pass_session
def tag(session: Session, source: str, target: str, node: str | None) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    session.client.images.tag(source, target, node=node)


@click.command("rm")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force removal of the image.")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents.")
@node_option
@pass_session
def remove_images(session: Session, images: tuple[str, ...], force: bool, no_prune: bool,
                  node: str | None) -> None:
    """Remove one or more images."""
    failures, fatal = [], False
    for name in images:
        try:
            removed = session.client.images.remove(name, force=force, noprune=no_prune,
                                                   node=node)
        except errors.KranError as exc:
            if isinstance(exc, ConnectionFailed):
                raise
            # As docker: with --force a missing image is reported but not a failure.
            fatal = fatal or not isinstance(exc, errors.NotFound)
            failures.append(error_line(exc))
            continue
        for item in removed:
            for key, value in item.items():
                click.echo(f"{key}: {value}")
    for line in failures:
        click.echo(line, err=True)
    if failures and (fatal or not force):
        sys.exit(1)


_PRUNE_WARNINGS = {
    False: "WARNING! This will remove all dangling images.",
    True: "WARNING! This will remove all images without at least one container "
          "associated to them.",
}


def confirm(warning: str) -> bool:
    """Docker's prompt: the warning, then "[y/N]" read from stdin."""
    click.echo(f"{warning}\nAre you sure you want to continue? [y/N] ", nl=False)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def prune_report(report: dict[str, Any]) -> str:
    """What docker image prune prints after pruning."""
    lines = []
    deleted = report.get("ImagesDeleted") or []
    if deleted:
        lines.append("Deleted Images:")
        for item in deleted:
            for key, value in item.items():
                lines.append(f"{key.lower()}: {value}")
    lines.append("")
    lines.append(f"Total reclaimed space: {human_size(report['SpaceReclaimed'], 4)}")
    return "\n".join(lines) + "\n"


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True,
              help="Remove all unused images, not just dangling ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@node_option
@pass_session
def prune(session: Session, all_: bool, force: bool, node: str | None) -> None:
    """Remove unused images."""
    if not force and not confirm(_PRUNE_WARNINGS[all_]):
        return
    report = session.client.images.prune(all=all_, node=node)
    click.echo(prune_report(report), nl=False)


@click.group("image")
def image_group() -> None:
    """Manage images."""


# `kran image <verb>`; cli.main puts some of these at the top level too.
for _command in (list_images, inspect_images, history, tag, remove_images, prune,
                 *image_io.COMMANDS, registry.pull, registry.push):
    image_group.add_command(_command)
image_group.add_command(list_images, "list")
image_group.add_command(remove_images, "remove")
image_group.add_command(remove_images, "rmi")
