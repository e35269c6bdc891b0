"""ContainerSpec.upper_dir/work_dir: a container's changes survive its task being deleted and re-created."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.runtime.runtime import Runtime
from kran import errors
from tests.integration.runtime.conftest import leftovers, run


async def _run(rt: Runtime, spec) -> int:
    await rt.create(spec)
    await rt.start(spec.id)
    return (await rt.wait(spec.id, timeout=20)).exit_code


def test_changes_survive_a_new_task(runtime, spec, tmp_path: Path) -> None:
    record = tmp_path / "record"
    dirs = {"upper_dir": record / "upper", "work_dir": record / "work"}
    first = spec("sh", "-c", "echo kept > /data.txt && rm /etc/group", **dirs)
    assert run(_run(runtime, first)) == 0
    shim_pid = runtime.state(first.id).shim_pid
    run(runtime.delete(first.id))
    assert leftovers(runtime, first.id, shim_pid) == []
    assert (record / "upper" / "data.txt").read_text() == "kept\n"
    again = spec("sh", "-c", "cat /data.txt && test ! -e /etc/group", id=first.id, **dirs)
    assert run(_run(runtime, again)) == 0
    lines = runtime.log_path(again.id).read_text()
    assert '"log": "kept\\n"' in lines
    run(runtime.delete(again.id))
    assert (record / "upper" / "data.txt").exists() and (record / "work").is_dir()
    shutil.rmtree(record)


def test_without_them_the_bundle_keeps_its_own(runtime, spec) -> None:
    container = spec("true")
    run(runtime.create(container))
    bundle = runtime.bundle(container.id)
    assert (bundle / "upper").is_dir() and (bundle / "work").is_dir()


@pytest.mark.parametrize("dirs", [
    {"upper_dir": Path("/tmp/u")},
    {"upper_dir": Path("relative/u"), "work_dir": Path("relative/w")},
    {"upper_dir": Path("/tmp/a:b"), "work_dir": Path("/tmp/w")},
])
def test_bad_overlay_dirs_are_refused(runtime, spec, dirs) -> None:
    with pytest.raises(errors.InvalidArgument):
        run(runtime.create(spec("true", **dirs)))
    assert runtime.list() == []


def test_overlay_dirs_inside_the_bundle_are_refused(runtime, spec) -> None:
    container = spec("true")
    bundle = runtime.bundle(container.id)
    container.upper_dir, container.work_dir = bundle / "upper", bundle / "work"
    with pytest.raises(errors.InvalidArgument):
        run(runtime.create(container))
    assert runtime.list() == []
