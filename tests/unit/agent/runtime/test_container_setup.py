"""Pure parts of the container's setup: PATH lookup with Docker's codes, mount options, log lines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent import linux
from agent.runtime.container import ExecError, lookup
from agent.runtime.logfile import MAX_LINE, LogWriter
from agent.runtime.rootfs import parse_options


def test_lookup(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "plain").write_text("x")
    tool = tmp_path / "bin" / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    env = [f"PATH={tmp_path}/plain-dir:{tmp_path}/bin"]
    assert lookup("tool", env) == str(tool)
    assert lookup(str(tool), []) == str(tool)
    with pytest.raises(ExecError) as caught:
        lookup("nope", env)
    assert (caught.value.exit_code, str(caught.value)) == (127, 'exec: "nope": executable file not found in $PATH')
    with pytest.raises(ExecError) as caught:
        lookup(str(tmp_path / "plain"), env)
    assert caught.value.exit_code == 126 and str(caught.value).endswith("permission denied")
    with pytest.raises(ExecError) as caught:
        lookup(str(tmp_path / "missing"), env)
    assert caught.value.exit_code == 127 and "no such file or directory" in str(caught.value)


def test_mount_options() -> None:
    flags, propagation, data = parse_options(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "ro"])
    assert flags == linux.MS_NOSUID | linux.MS_NOEXEC | linux.MS_RDONLY
    assert (propagation, data) == (0, "newinstance,ptmxmode=0666")
    flags, propagation, data = parse_options(["rbind", "rprivate"])
    assert (flags, propagation, data) == (linux.MS_BIND | linux.MS_REC, linux.MS_PRIVATE | linux.MS_REC, "")


def test_log_lines(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = LogWriter(str(path))
    log.write("stdout", b"one\ntw")
    log.write("stderr", b"err\n")
    log.write("stdout", b"o\n" + b"x" * (MAX_LINE + 1))
    log.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["stream"], r["log"]) for r in records] == [
        ("stdout", "one\n"), ("stderr", "err\n"), ("stdout", "two\n"), ("stdout", "x" * MAX_LINE),
        ("stdout", "x")]
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"
