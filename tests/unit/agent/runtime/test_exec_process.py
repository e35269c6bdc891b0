"""An exec's process from the container's config (Docker's env, user, cwd and capability rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.runtime.exec_process import build_process, merge_env, validate
from agent.runtime.oci import CAPABILITY_NAMES, build_config, capability_mask, overlay_dirs
from agent.runtime.spec import ContainerSpec, ExecSpec, User
from kran import errors


def _config(**kwargs) -> dict:
    spec = ContainerSpec(id="c1", lowers=[Path("/l")], args=["sleep"], **kwargs)
    return build_config(spec, User(uid=5, gid=6, home="/home/five"), Path("/b/c1"), "kran")


def test_merge_env_replaces_appends_and_unsets() -> None:
    assert merge_env(["A=1", "B=2", "C=3"], ["B=20", "D=4", "C"]) == ["A=1", "B=20", "D=4"]
    assert merge_env(["A=1"], ["A=x=y"]) == ["A=x=y"]


def test_defaults_are_the_containers() -> None:
    process = build_process(_config(env=["X=1"], cwd="/srv"), ExecSpec(["ls"]), None, 40)
    assert process["user"] == {"uid": 5, "gid": 6, "additionalGids": []}
    assert process["cwd"] == "/srv"
    assert "X=1" in process["env"] and "HOME=/home/five" in process["env"]
    assert capability_mask(process["capabilities"]["effective"]) == 0xa80425fb
    assert process["noNewPrivileges"] is True and process["terminal"] is False


def test_exec_user_brings_its_home_unless_the_container_set_home() -> None:
    nobody = User(uid=65534, gid=65534, additional_gids=[65534], home="/nonexistent")
    process = build_process(_config(), ExecSpec(["id"], user="nobody"), nobody, 40)
    assert process["user"] == {"uid": 65534, "gid": 65534, "additionalGids": [65534]}
    assert "HOME=/nonexistent" in process["env"]
    process = build_process(_config(env=["HOME=/data"]), ExecSpec(["id"], user="nobody"), nobody, 40)
    assert "HOME=/data" in process["env"]


def test_exec_env_cwd_and_terminal() -> None:
    process = build_process(_config(env=["X=1", "Y=2"]), ExecSpec(["sh"], env=["X=9", "Y", "Z=3"], cwd="/tmp",
                                                                  tty=True), None, 40)
    assert "X=9" in process["env"] and "Z=3" in process["env"] and not any(e.startswith("Y=") for e in process["env"])
    assert process["env"][-1] == "TERM=xterm" and process["cwd"] == "/tmp" and process["terminal"] is True
    process = build_process(_config(), ExecSpec(["sh"], env=["TERM=dumb"], tty=True), None, 40)
    assert "TERM=xterm" not in process["env"]


def test_privileged_gets_every_capability_the_kernel_knows() -> None:
    process = build_process(_config(), ExecSpec(["sh"], privileged=True), None, 37)
    assert process["capabilities"]["bounding"] == list(CAPABILITY_NAMES[:38])
    assert capability_mask(process["capabilities"]["permitted"]) == (1 << 38) - 1


@pytest.mark.parametrize("spec", [
    ExecSpec([]), ExecSpec([""]), ExecSpec(["ls"], cwd="relative"), ExecSpec(["ls\0"]), ExecSpec(["ls"], size=(1, 70000)),
])
def test_invalid_execs(spec: ExecSpec) -> None:
    with pytest.raises(errors.InvalidArgument):
        validate(spec)


def test_overlay_dirs_default_to_the_bundle_or_follow_the_spec() -> None:
    assert overlay_dirs(_config(), "/b/c1") == ("/b/c1/upper", "/b/c1/work")
    config = _config(upper_dir=Path("/r/upper"), work_dir=Path("/r/work"))
    assert overlay_dirs(config, "/b/c1") == ("/r/upper", "/r/work")
