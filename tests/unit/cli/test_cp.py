"""docker cp's rules for where a copy lands, both ways, and safe unpacking."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from cli.cp import copy_in, copy_out, local_destination, split_target
from kran import errors
from kran.client.archive import archive_stat


def tar_of(entries):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size, info.mode, info.uid = len(data), 0o644, 1234
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Box:
    """A container's archive calls over a dict of path -> tar (the seam cp uses)."""

    def __init__(self, archives):
        self.archives = archives
        self.id = "box"
        self.put = []

    def get_archive(self, path):
        if path not in self.archives:
            raise errors.NotFound(f"Could not find the file {path} in container box")
        data = self.archives[path]
        return archive_stat(iter([data[i:i + 300] for i in range(0, len(data), 300)]))

    def stat_path(self, path):
        chunks, stat = self.get_archive(path)
        chunks.close()
        return stat

    def put_archive(self, path, data):
        self.put.append((path, data))
        return True


ETC = tar_of([("etc", "dir", None), ("etc/hosts", "file", b"hosts\n"),
              ("etc/mtab", "link", "/proc/mounts")])


def test_split_target():
    assert split_target("web:/etc") == ("web", "/etc")
    assert split_target("./a:b") == (None, "./a:b")
    assert split_target("/abs:x") == (None, "/abs:x")
    assert split_target("plain") == (None, "plain")


def test_local_destination_rules(tmp_path):
    assert local_destination(str(tmp_path), "etc") == (str(tmp_path), "etc")
    assert local_destination(str(tmp_path / "new"), "etc") == (str(tmp_path), "new")
    with pytest.raises(errors.InvalidArgument):
        local_destination(str(tmp_path / "missing" / "x"), "etc")
    with pytest.raises(errors.InvalidArgument):
        local_destination(str(tmp_path / "nodir") + "/", "etc")


def test_copy_out_into_existing_dir_and_to_new_name(tmp_path):
    box = Box({"/etc": ETC})
    copy_out(box, "/etc", str(tmp_path), keep_owner=False)
    assert (tmp_path / "etc" / "hosts").read_bytes() == b"hosts\n"
    assert os.readlink(tmp_path / "etc" / "mtab") == "/proc/mounts"
    copy_out(box, "/etc", str(tmp_path / "copy"), keep_owner=False)
    assert (tmp_path / "copy" / "hosts").exists()
    assert os.stat(tmp_path / "copy" / "hosts").st_uid == os.getuid()


def test_copy_out_contents_of_a_directory(tmp_path):
    box = Box({"/etc/.": ETC})
    copy_out(box, "/etc/.", str(tmp_path / "flat"), keep_owner=False)
    assert sorted(os.listdir(tmp_path / "flat")) == ["hosts", "mtab"]


def test_copy_out_file_over_file(tmp_path):
    target = tmp_path / "h"
    target.write_bytes(b"old")
    box = Box({"/etc/hosts": tar_of([("hosts", "file", b"new\n")])})
    copy_out(box, "/etc/hosts", str(target), keep_owner=False)
    assert target.read_bytes() == b"new\n"


def test_copy_out_refuses_writing_through_an_escaping_link(tmp_path):
    hostile = tar_of([("x", "dir", None), ("x/up", "link", "../../.."),
                      ("x/up/escaped", "file", b"no")])
    (tmp_path / "dest").mkdir()
    with pytest.raises(tarfile.FilterError):
        copy_out(Box({"/x": hostile}), "/x", str(tmp_path / "dest"), keep_owner=False)
    assert not (tmp_path / "escaped").exists()


def test_copy_in_to_directory_and_to_new_name(tmp_path):
    local = tmp_path / "f.txt"
    local.write_bytes(b"data")
    box = Box({"/tmp": tar_of([("tmp", "dir", None)])})
    copy_in(box, str(local), "/tmp")
    path, data = box.put[-1]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert (path, tar.getnames()) == ("/tmp", ["f.txt"])
    copy_in(box, str(local), "/tmp/renamed")
    path, data = box.put[-1]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert (path, tar.getnames()) == ("/tmp", ["renamed"])


def test_copy_in_refusals(tmp_path):
    box = Box({"/etc/hosts": tar_of([("hosts", "file", b"x")])})
    with pytest.raises(errors.InvalidArgument, match="no such file"):
        copy_in(box, str(tmp_path / "missing"), "/tmp")
    with pytest.raises(errors.InvalidArgument, match="directory to a file"):
        copy_in(box, str(tmp_path), "/etc/hosts")
