"""`kran cp`: files between a container and this machine, as docker cp copies them.

Out of a container: the tar of the path, unpacked so that the copy lands at
the destination (inside it when it is an existing directory, as it
otherwise), symlinks kept, nothing written outside the destination, and
files owned by the caller unless -a. Into a container: a tar of the local
path, named so that it unpacks to the destination, sent to the existing
directory it goes into. "-" stands for a tar on stdin or stdout.
"""

from __future__ import annotations

import io
import os
import posixpath
import sys
import tarfile

import click

from cli.flags import DockerCommand, StatusError
from cli.session import Session, pass_session
from kran import errors
from kran.client import Container
from kran.client.archive import ChunkReader, is_dir
from kran.units import human_size


def split_target(arg: str) -> tuple[str | None, str]:
    """ "ctr:/path" -> ("ctr", "/path"); a local path (absolute, ./, or no colon) -> (None, p)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


class _Extract(tarfile.TarFile):
    """Extraction that keeps ownership only when asked (docker cp -a)."""

    keep_owner = False

    def chown(self, tarinfo: tarfile.TarInfo, targetpath: str, numeric_owner: bool) -> None:
        if self.keep_owner:
            super().chown(tarinfo, targetpath, numeric_owner=True)


def _safe(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's "tar" filter, but symlinks kept as they are (containers have absolute ones).

    A member written through an escaping symlink is still refused, since the
    filter resolves every member's path against what is already on disk.
    """
    try:
        return tarfile.tar_filter(member, dest)
    except (tarfile.AbsoluteLinkError, tarfile.LinkOutsideDestinationError):
        if member.issym():
            return member
        raise


def rebase(member: tarfile.TarInfo, source_base: str, new_base: str) -> None:
    """Rename the archive's top entry (and what is below it) from source_base to new_base."""
    name = member.name.lstrip("/")
    if name == source_base or name.startswith(source_base + "/"):
        member.name = new_base + name[len(source_base):]


def local_destination(dest: str, source_base: str) -> tuple[str, str]:
    """(directory to unpack into, name the copy gets) for docker cp's rules."""
    dest_abs = os.path.abspath(dest)
    if os.path.isdir(dest_abs):
        return dest_abs, source_base
    if dest.endswith("/"):
        raise errors.InvalidArgument(f"destination directory does not exist: {dest}")
    parent = os.path.dirname(dest_abs)
    if not os.path.isdir(parent):
        raise errors.InvalidArgument(f"no such directory: {parent}")
    return parent, os.path.basename(dest_abs)


def copy_out(container: Container, path: str, dest: str, keep_owner: bool) -> int:
    """Unpack path from the container to dest; returns the bytes received."""
    chunks, stat = container.get_archive(path)
    if dest == "-":
        total = 0
        out = sys.stdout.buffer
        for chunk in chunks:
            out.write(chunk)
            total += len(chunk)
        out.flush()
        return total
    source_base = stat.get("name") or posixpath.basename(path.rstrip("/")) or "."
    contents_only = path.endswith("/.") and is_dir(stat)
    if os.path.isfile(dest) and is_dir(stat):
        raise errors.InvalidArgument(f"cannot copy directory to existing file: {dest}")
    if contents_only:
        directory, new_base = os.path.abspath(dest), ""
        os.makedirs(directory, exist_ok=True)
    else:
        directory, new_base = local_destination(dest, source_base)
    reader = ChunkReader(chunks)
    with _Extract.open(fileobj=io.BufferedReader(reader), mode="r|") as tar:
        tar.keep_owner = keep_owner
        for member in tar:
            if contents_only:
                rebase(member, source_base, ".")
            elif new_base != source_base:
                rebase(member, source_base, new_base)
            tar.extract(member, directory, filter=_safe)
    return reader.total


def local_tar(source: str, arcname: str) -> bytes:
    """A tar of a local file or directory, its top entry named arcname."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(source, arcname=arcname)
    return buffer.getvalue()


def copy_in(container: Container, source: str, path: str) -> int:
    """Copy a local path (or a tar on stdin) to path in the container; bytes sent."""
    try:
        stat = container.stat_path(path)
    except errors.NotFound:
        stat = None
    if source == "-":
        if stat is None or not is_dir(stat):
            raise errors.InvalidArgument(f'destination "{container.id}:{path}" must be a '
                                         "directory")
        data = sys.stdin.buffer.read()
        container.put_archive(path, data)
        return len(data)
    if not os.path.lexists(source):
        raise errors.InvalidArgument(f"stat {os.path.abspath(source)}: no such file or directory")
    local_base = os.path.basename(os.path.abspath(source))
    if stat is not None and is_dir(stat):
        directory, name = path, local_base
        if source.endswith("/.") and os.path.isdir(source):
            name = "."
    else:
        if stat is not None and os.path.isdir(source):
            raise errors.InvalidArgument("cannot copy a directory to a file")
        if path.endswith("/"):
            raise errors.InvalidArgument(f"destination directory does not exist: {path}")
        directory, name = posixpath.dirname(path.rstrip("/")) or "/", posixpath.basename(path)
    data = local_tar(source, name)
    container.put_archive(directory, data)
    return len(data)


@click.command("cp", cls=DockerCommand)
@click.argument("source")
@click.argument("destination")
@click.option("-a", "--archive", is_flag=True, help="Archive mode (copy all uid/gid information).")
@click.option("-q", "--quiet", is_flag=True,
              help="Suppress progress output during copy.")
@pass_session
def cp(session: Session, source: str, destination: str, archive: bool, quiet: bool) -> None:
    """Copy files/folders between a container and the local filesystem.

    CONTAINER:SRC_PATH DEST_PATH|-  or  SRC_PATH|- CONTAINER:DEST_PATH
    """
    if not source:
        raise StatusError("source can not be empty", 1)
    if not destination:
        raise StatusError("destination can not be empty", 1)
    src_container, src_path = split_target(source)
    dst_container, dst_path = split_target(destination)
    client = session.client
    if src_container and dst_container:
        raise errors.InvalidArgument("copying between containers is not supported")
    if src_container:
        container = Container({"Id": src_container}, client, client.containers)
        size = copy_out(container, src_path, dst_path, archive)
        shown = dst_path if dst_path == "-" else os.path.abspath(dst_path)
    elif dst_container:
        container = Container({"Id": dst_container}, client, client.containers)
        size = copy_in(container, src_path, dst_path)
        shown = f"{dst_container}:{dst_path}"
    else:
        raise errors.InvalidArgument("must specify at least one container source")
    if not quiet and shown != "-":
        click.echo(f"Successfully copied {human_size(size)} to {shown}", err=True)


COMMANDS = (cp,)
