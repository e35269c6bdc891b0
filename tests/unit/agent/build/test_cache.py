"""Cache keys: the parent and the history line decide."""

from __future__ import annotations

from agent.build.cache import copy_created_by, run_created_by, step_key

PARENT = "sha256:" + "a" * 64


def test_the_same_parent_and_line_give_the_same_key():
    assert step_key(PARENT, "/bin/sh -c make") == step_key(PARENT, "/bin/sh -c make")
    assert len(step_key(PARENT, "x")) == 64


def test_a_different_parent_line_or_file_checksum_changes_the_key():
    base = step_key(PARENT, copy_created_by("COPY", "file", "1" * 64, "/app/"))
    assert step_key("sha256:" + "b" * 64, copy_created_by("COPY", "file", "1" * 64, "/app/")) != base
    assert step_key(PARENT, copy_created_by("COPY", "file", "2" * 64, "/app/")) != base
    assert step_key(PARENT, copy_created_by("COPY", "file", "1" * 64, "/srv/")) != base
    assert step_key(PARENT, copy_created_by("COPY", "file", "1" * 64, "/app/", chown="1:1")) != base
    assert step_key("", "x") == step_key("", "x") != step_key(PARENT, "x")


def test_run_lines_carry_the_build_args_in_effect():
    assert run_created_by(["/bin/sh", "-c", "make"], {}) == "/bin/sh -c make"
    line = run_created_by(["/bin/sh", "-c", "make"], {"V": "2", "A": "x"})
    assert line == "|2 A=x V=2 /bin/sh -c make"
    assert step_key(PARENT, line) != step_key(PARENT, run_created_by(["/bin/sh", "-c", "make"], {"V": "3", "A": "x"}))


def test_copy_lines_look_like_dockers():
    assert copy_created_by("COPY", "dir", "ab" * 32, "/srv") == f"COPY dir:{'ab' * 32} in /srv "
    assert copy_created_by("ADD", "multi", "c" * 64, "/x/", chmod="600") == f"ADD --chmod=600 multi:{'c' * 64} in /x/ "
