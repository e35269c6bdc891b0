"""COPY sources in a root: matching, staying inside it, and the checksum of what they hold."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.build.sources import Root, clean
from kran import errors


@pytest.fixture
def context(sandbox: Path):
    root = sandbox / "context"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "a.py").write_text("a")
    (root / "src" / "b.py").write_text("b")
    (root / "src" / "pkg" / "c.py").write_text("c")
    (root / "README").write_text("readme")
    os.symlink("src/a.py", root / "link")
    os.symlink("/etc", root / "escape")
    (sandbox / "outside").write_text("secret")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    yield Root(fd, "build context")
    os.close(fd)


def test_a_plain_path_and_a_symlink_resolve_inside_the_root(context):
    assert context.match("/src/a.py")[0].path == "src/a.py"
    link = context.match("link")[0]
    assert (link.path, link.name, link.is_dir) == ("src/a.py", "link", False)
    assert context.match(".")[0].path == "" and context.match(".")[0].is_dir


def test_an_absolute_symlink_resolves_inside_the_root_not_on_the_host(context):
    with pytest.raises(errors.NotFound, match="stat escape/passwd: file does not exist"):
        context.match("escape/passwd")


def test_wildcards_match_one_component_each(context):
    assert [s.path for s in context.match("src/*.py")] == ["src/a.py", "src/b.py"]
    assert [s.path for s in context.match("*/pkg/?.py")] == ["src/pkg/c.py"]
    assert [s.path for s in context.match("src/[^a].py")] == ["src/b.py"]
    with pytest.raises(errors.NotFound, match="no source files were specified"):
        context.match("*.go")


def test_missing_and_outside_paths_are_refused_as_docker_words_it(context):
    with pytest.raises(errors.NotFound, match="file not found in build context or excluded by .dockerignore: "
                                              "stat nope: file does not exist"):
        context.match("nope")
    with pytest.raises(errors.InvalidArgument, match="forbidden path outside the build context: ../outside"):
        context.match("../outside")
    assert clean("/a/../b/./c") == "b/c"
    with pytest.raises(errors.InvalidArgument):
        clean("/../x")


def test_the_checksum_follows_content_mode_and_names_but_not_times(context):
    sources = context.match("src")
    before = context.digest(sources)
    os.utime(context.path / "src" / "a.py", (1, 1))
    assert context.digest(sources) == before
    (context.path / "src" / "a.py").write_text("changed")
    changed = context.digest(sources)
    assert changed != before
    os.chmod(context.path / "src" / "a.py", 0o600)
    assert context.digest(sources) != changed
    assert context.digest(context.match("src/a.py")) != context.digest(context.match("link"))
