"""kran build's flags and builder prune's report."""

from __future__ import annotations

import io
import tarfile

import pytest

from cli.build import _is_archive, _pairs, _prune_report
from kran import errors


def test_build_args_take_a_bare_name_from_the_environment(monkeypatch):
    monkeypatch.setenv("FROM_ENV", "yes")
    monkeypatch.delenv("NOT_SET", raising=False)
    assert _pairs(("A=1", "B=", "FROM_ENV", "NOT_SET"), True) == {"A": "1", "B": "", "FROM_ENV": "yes"}
    assert _pairs(("label",), False) == {"label": ""}
    with pytest.raises(errors.InvalidArgument):
        _pairs(("=x",), True)


def test_stdin_is_a_context_archive_or_a_dockerfile():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("Dockerfile"), io.BytesIO(b""))
    assert _is_archive(buf.getvalue())
    assert _is_archive(b"\x1f\x8b\x08rest")
    assert not _is_archive(b"FROM busybox\nRUN true\n")


def test_the_prune_report_is_dockers():
    assert _prune_report({"CachesDeleted": ["abc", "def"], "SpaceReclaimed": 2048}) == \
        "Deleted build cache objects:\nabc\ndef\n\nTotal reclaimed space: 2.048kB\n"
    assert _prune_report({"CachesDeleted": None, "SpaceReclaimed": 0}) == "Total reclaimed space: 0B\n"
