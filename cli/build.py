"""`kran build` and `kran builder prune`: docker build with the classic builder's output.

Output goes to stdout as the node sends it ("Step 1/3 : FROM busybox",
" ---> Using cache", RUN's own output, "Successfully built ..."); pulls
a FROM needs show docker's pull lines. With -q only the image id is
printed. A failed build prints its error on stderr and exits with the
failed RUN's exit code (1 for other failures), as docker build does.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from typing import Any

import click

from cli.session import Session, pass_session
from kran import errors
from kran.client.build import build_stream
from kran.units import human_size

# Context tars docker accepts on stdin: plain tar ("ustar" at 257) or compressed.
_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


def _pairs(values: tuple[str, ...], from_env: bool) -> dict[str, str]:
    """K=V options; a bare K takes the environment's value (--build-arg) or "" (--label)."""
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not key:
            raise errors.InvalidArgument(f"invalid argument {item!r}: expected KEY=VALUE")
        if sep:
            pairs[key] = value
        elif not from_env:
            pairs[key] = ""
        elif key in os.environ:
            pairs[key] = os.environ[key]
    return pairs


def _is_archive(data: bytes) -> bool:
    return data[257:262] == b"ustar" or data.startswith(_ARCHIVE_MAGIC)


class _Output:
    """Prints the build's lines: stream text as it is, pull lines as docker pull prints them."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.buffer: list[str] = []
        self.printer: Any = None

    def show(self, line: dict[str, Any]) -> None:
        if "stream" in line:
            if self.quiet:
                self.buffer.append(line["stream"])
            else:
                sys.stdout.write(line["stream"])
                sys.stdout.flush()
        elif "status" in line and not self.quiet:
            if self.printer is None:
                from cli.registry import printer_for  # noqa: PLC0415 - only when a FROM pulls
                self.printer = printer_for(sys.stdout)
            self.printer.show(line)


@click.command("build")
@click.argument("path", metavar="PATH | -")
@click.option("-t", "--tag", "tags", multiple=True, metavar="NAME[:TAG]",
              help="Name and optionally a tag in the 'name:tag' format (repeatable).")
@click.option("-f", "--file", "file", metavar="FILE", help="Name of the Dockerfile (default: PATH/Dockerfile).")
@click.option("--build-arg", "build_args", multiple=True, metavar="KEY=VALUE", help="Set build-time variables.")
@click.option("--target", default="", help="Set the target build stage to build.")
@click.option("--no-cache", is_flag=True, help="Do not use cache when building the image.")
@click.option("--pull", is_flag=True, help="Always attempt to pull a newer version of the image.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the build output and print image ID on success.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Set metadata for an image.")
@click.option("--progress", type=click.Choice(["auto", "plain"]), default="auto",
              help="Set type of progress output (both print the classic builder's lines).")
@click.option("--node", metavar="NODE", help="Build on this node (id, id prefix or hostname).")
@pass_session
def build(session: Session, path: str, tags: tuple[str, ...], file: str | None, build_args: tuple[str, ...],
          target: str, no_cache: bool, pull: bool, quiet: bool, labels: tuple[str, ...], progress: str,
          node: str | None) -> None:
    """Build an image from a Dockerfile."""
    kwargs: dict[str, Any] = dict(tag=list(tags), nocache=no_cache, pull=pull, target=target or None,
                                  buildargs=_pairs(build_args, True), labels=_pairs(labels, False), node=node)
    with tempfile.TemporaryDirectory(prefix="kran-build-") as scratch:
        if path == "-":
            if file == "-":
                raise errors.InvalidArgument("invalid argument: can't use stdin for both build context and dockerfile")
            data = sys.stdin.buffer.read()
            archive = _is_archive(data)
            kwargs.update(fileobj=io.BytesIO(data), custom_context=archive, dockerfile=file if archive else None)
        else:
            kwargs.update(path=path, dockerfile=_dockerfile(file, scratch))
        sys.exit(_run(session, kwargs, quiet))


def _dockerfile(file: str | None, scratch: str) -> str | None:
    """-f as the SDK takes it: an absolute path (relative ones are from the current directory)."""
    if file is None:
        return None
    if file == "-":
        saved = os.path.join(scratch, "Dockerfile")
        with open(saved, "wb") as out:
            out.write(sys.stdin.buffer.read())
        return saved
    return os.path.abspath(file)


def _run(session: Session, kwargs: dict[str, Any], quiet: bool) -> int:
    output = _Output(quiet)
    sending: list[Any] = []
    announced = False
    image_id = ""
    # The SDK's build function itself: ImageCollection (and what it loads) is not needed here.
    for line in build_stream(session.client, sending=sending, **kwargs):
        if not announced and not quiet:
            announced = True
            where = line.get("node") or "the node"
            click.echo(f"Sending build context to {where}  {human_size(sending[0].sent, 4)}")
        if "error" in line:
            if quiet:
                sys.stderr.write("".join(output.buffer))
            click.echo(line["error"], err=True)
            return int(line["errorDetail"].get("code") or 1)
        if "aux" in line:
            image_id = line["aux"]["ID"]
        output.show(line)
    if quiet:
        click.echo(image_id)
    return 0


def _prune_report(report: dict[str, Any]) -> str:
    lines = []
    deleted = report.get("CachesDeleted") or []
    if deleted:
        lines += ["Deleted build cache objects:", *deleted, ""]
    lines.append(f"Total reclaimed space: {human_size(report['SpaceReclaimed'], 4)}")
    return "\n".join(lines) + "\n"


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused build cache, not just dangling ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--node", metavar="NODE", help="Prune this node's build cache only (id, id prefix or hostname).")
@pass_session
def prune(session: Session, all_: bool, force: bool, node: str | None) -> None:
    """Remove build cache."""
    from cli.images import confirm  # noqa: PLC0415 - the prompt image prune uses

    warning = "WARNING! This will remove all build cache." if all_ else \
        "WARNING! This will remove all dangling build cache."
    if not force and not confirm(warning):
        return
    click.echo(_prune_report(session.client.images.prune_builds(all=all_, node=node)), nl=False)


@click.group("builder")
def builder_group() -> None:
    """Manage builds."""


builder_group.add_command(prune)
builder_group.add_command(build)
