"""`kran import`, `load`, `save`: image tarballs in and out, as docker does them."""

from __future__ import annotations

import os
import sys
import tempfile

import click

from cli.session import Session, node_option, pass_session
from kran import errors


@click.command("import")
@click.argument("file")
@click.argument("reference", required=False, metavar="[REPOSITORY[:TAG]]")
@click.option("-c", "--change", "changes", multiple=True, metavar="LINE",
              help="Apply a Dockerfile instruction to the created image (CMD, ENV, ...).")
@click.option("-m", "--message", default="", help="Set a commit message for the imported image.")
@click.option("--platform", default="", help="Set platform (os/arch) of the image.")
@node_option
@pass_session
def import_image(session: Session, file: str, reference: str | None, changes: tuple[str, ...],
                 message: str, platform: str, node: str | None) -> None:
    """Import the contents from a tarball (FILE, or - for stdin) to create an image."""
    source = sys.stdin.buffer if file == "-" else file
    image = session.client.images.import_image(source, reference=reference, changes=changes,
                                               message=message, node=node, platform=platform)
    click.echo(image.id)


@click.command("load")
@click.option("-i", "--input", "input_", metavar="FILE",
              help="Read from tar archive file, instead of STDIN.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output.")
@node_option
@pass_session
def load(session: Session, input_: str | None, quiet: bool, node: str | None) -> None:
    """Load images from a tar archive or STDIN."""
    if input_ is None and sys.stdin.isatty():
        raise errors.InvalidArgument("requested load from stdin, but stdin is empty")
    source = input_ if input_ is not None else sys.stdin.buffer
    _, messages = session.client.images.load(source, node=node)
    # docker load -q hides only the progress bars; the result lines stay.
    for line in messages:
        click.echo(line)


def save_to_file(session: Session, names: tuple[str, ...], path: str, node: str | None) -> None:
    """Write the tarball beside path, then rename it into place: no half files."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, partial = tempfile.mkstemp(prefix=".kran-save-", dir=directory)
    except OSError as exc:
        raise errors.InvalidArgument(f"failed to save to {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            session.client.images.save(names, out, node=node)
        os.chmod(partial, 0o666 & ~_umask())
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@click.command("save")
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--output", metavar="FILE", help="Write to a file, instead of STDOUT.")
@node_option
@pass_session
def save(session: Session, images: tuple[str, ...], output: str | None, node: str | None) -> None:
    """Save one or more images to a tar archive (streamed to STDOUT by default)."""
    if output:
        save_to_file(session, images, output, node)
        return
    if sys.stdout.isatty():
        raise errors.InvalidArgument(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect")
    out = sys.stdout.buffer
    session.client.images.save(images, out, node=node)
    out.flush()


COMMANDS = (import_image, load, save)
