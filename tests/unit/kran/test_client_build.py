"""The SDK's build context (a tar less what .dockerignore excludes) and docker build's stream dicts."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from kran import errors
from kran.api.v1 import images_pb2
from kran.client.build import Sending, build_args, context_paths, directory_context, dockerignore, progress_dict


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("print()")
    (tmp_path / "src" / "cache.pyc").write_text("x")
    (tmp_path / "node_modules" / "pkg").mkdir(parents=True)
    (tmp_path / "node_modules" / "pkg" / "index.js").write_text("js")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "keep.txt").write_text("keep")
    (tmp_path / "logs" / "drop.txt").write_text("drop")
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    os.symlink("src/main.py", tmp_path / "link")
    (tmp_path / ".dockerignore").write_text("**/*.pyc\nnode_modules\nlogs\n!logs/keep.txt\n")
    return tmp_path


def test_ignored_paths_stay_out_and_exceptions_come_back(context: Path):
    paths = list(context_paths(context, dockerignore(context)))
    assert paths == [".dockerignore", "Dockerfile", "link", "logs/keep.txt", "src", "src/main.py"]


def test_the_context_tar_has_root_owners_and_keeps_symlinks(context: Path):
    data = b"".join(directory_context(context))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {".dockerignore", "Dockerfile", "link", "logs/keep.txt", "src", "src/main.py"}
        assert all(m.uid == 0 and m.gid == 0 for m in members.values())
        assert members["link"].issym() and members["link"].linkname == "src/main.py"
        assert tar.extractfile("src/main.py").read() == b"print()"


def test_a_bad_dockerignore_is_a_clear_error(tmp_path: Path):
    (tmp_path / ".dockerignore").write_text("[\n")
    with pytest.raises(errors.InvalidArgument, match="error checking context: invalid pattern"):
        dockerignore(tmp_path)


def test_a_context_that_fails_to_read_is_kept_for_the_caller():
    def broken():
        yield b"x"
        raise errors.InvalidArgument("error checking context: can't stat 'x'")
    sending = Sending(images_pb2.BuildOptions(tags=["a"]), broken())
    messages = list(sending)
    assert [m.WhichOneof("part") for m in messages] == ["options", "chunk"]
    assert sending.sent == 1 and "can't stat" in str(sending.failed)


def test_progress_messages_become_dockers_stream_dicts():
    assert progress_dict(images_pb2.BuildProgress(stream="Step 1/2 : FROM x\n", node_name="n1")) == \
        {"stream": "Step 1/2 : FROM x\n", "node": "n1"}
    assert progress_dict(images_pb2.BuildProgress(image_id="sha256:ab")) == {"aux": {"ID": "sha256:ab"}}
    assert progress_dict(images_pb2.BuildProgress(error="boom", error_code=3)) == \
        {"error": "boom", "errorDetail": {"message": "boom", "code": 3}}
    pulled = progress_dict(images_pb2.BuildProgress(pull=images_pb2.Progress(id="abc", status="Pull complete")))
    assert pulled == {"status": "Pull complete", "id": "abc"}


def test_build_args_leave_out_unset_values():
    assert build_args({"A": 1, "B": None, "C": "x"}) == {"A": "1", "C": "x"}
