"""COPY and ADD into a root: where things land, owners and modes, archives."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from agent.build.copying import Ownership, copy_into, is_archive, make_dirs, ownership
from agent.build.sources import Root
from kran import errors


@pytest.fixture
def roots(sandbox: Path):
    context, target, scratch = sandbox / "context", sandbox / "target", sandbox / "scratch"
    for path in (context / "dir" / "sub", target / "etc", target / "existing", scratch):
        path.mkdir(parents=True)
    (context / "file.txt").write_text("file")
    os.chmod(context / "file.txt", 0o640)
    (context / "dir" / "one").write_text("1")
    (context / "dir" / "sub" / "two").write_text("2")
    (target / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (target / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    os.symlink("/existing", target / "linked")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("inside/x")
        info.size, info.uid = 1, 7
        tar.addfile(info, io.BytesIO(b"x"))
    (context / "bundle.tar.gz").write_bytes(gzip.compress(buf.getvalue()))
    context_fd = os.open(context, os.O_RDONLY | os.O_DIRECTORY)
    target_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    yield Root(context_fd, "build context"), target_fd, target, scratch
    os.close(context_fd)
    os.close(target_fd)


def test_a_file_lands_at_the_destination_or_inside_a_directory(roots):
    source, target_fd, target, scratch = roots
    copy_into(target_fd, "/new/name.txt", source, source.match("file.txt"), Ownership(), scratch)
    copy_into(target_fd, "/existing", source, source.match("file.txt"), Ownership(), scratch)
    copy_into(target_fd, "/made/", source, source.match("file.txt"), Ownership(), scratch)
    assert (target / "new" / "name.txt").read_text() == "file"
    assert (target / "existing" / "file.txt").read_text() == "file"
    assert (target / "made" / "file.txt").stat().st_mode & 0o777 == 0o640
    assert not list(scratch.iterdir())


def test_a_directory_copies_its_contents_and_follows_a_symlinked_destination(roots):
    source, target_fd, target, scratch = roots
    copy_into(target_fd, "/linked", source, source.match("dir"), Ownership(uid=1000, gid=50), scratch)
    assert os.path.islink(target / "linked")
    two = target / "existing" / "sub" / "two"
    assert two.read_text() == "2" and (two.stat().st_uid, two.stat().st_gid) == (1000, 50)
    copy_into(target_fd, "/fresh", source, source.match("dir"), Ownership(uid=1000, gid=1000, mode=0o700), scratch)
    fresh = (target / "fresh").stat()
    assert (fresh.st_uid, fresh.st_mode & 0o777) == (1000, 0o755)
    assert (target / "fresh" / "one").stat().st_mode & 0o777 == 0o700


def test_several_sources_need_a_directory_destination(roots):
    source, target_fd, _, scratch = roots
    with pytest.raises(errors.InvalidArgument, match="must be a directory and end with a /"):
        copy_into(target_fd, "/x", source, source.match("file.txt") + source.match("dir"), Ownership(), scratch)


def test_add_unpacks_a_local_archive_keeping_its_owners(roots):
    source, target_fd, target, scratch = roots
    archive = source.match("bundle.tar.gz")
    assert is_archive(source, archive[0]) and not is_archive(source, source.match("file.txt")[0])
    copy_into(target_fd, "/opt", source, archive, Ownership(), scratch, unpack=True)
    assert (target / "opt" / "inside" / "x").read_text() == "x"
    assert (target / "opt" / "inside" / "x").stat().st_uid == 7
    copy_into(target_fd, "/copied/", source, archive, Ownership(), scratch)
    assert (target / "copied" / "bundle.tar.gz").is_file()


def test_chown_names_come_from_the_images_passwd_and_group(roots):
    _, _, target, _ = roots
    assert ownership("app", "", [target]) == Ownership(1000, 1000)
    assert ownership("app:staff", "600", [target]) == Ownership(1000, 50, 0o600)
    assert ownership("42", "", []) == Ownership(42, 42)
    with pytest.raises(errors.InvalidArgument, match="unable to convert uid/gid chown string"):
        ownership("ghost", "", [target])


def test_make_dirs_creates_what_is_missing(roots):
    _, target_fd, target, _ = roots
    make_dirs(target_fd, "/a/b/c")
    make_dirs(target_fd, "/linked/d")
    assert (target / "a" / "b" / "c").is_dir() and (target / "existing" / "d").is_dir()
