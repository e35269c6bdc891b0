"""The agent's flags and its node id."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config
from kran import errors


def test_node_ids_look_like_swarm_ids() -> None:
    ids = {config.new_node_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 25 and i.isalnum() and i == i.lower() for i in ids)


def test_node_id_is_kept(tmp_path: Path) -> None:
    first = config.load_node_id(tmp_path)
    assert (tmp_path / "node_id").read_text().strip() == first
    assert config.load_node_id(tmp_path) == first


def test_a_damaged_node_id_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "node_id").write_text("not an id\n")
    with pytest.raises(errors.FailedPrecondition, match="remove the file"):
        config.load_node_id(tmp_path)


def test_defaults_and_advertise_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KRAN_CONTROLLER", raising=False)
    cfg = config.parse(["--hostname", "h1"])
    assert cfg.controller == "127.0.0.1:7640" and cfg.listen == "0.0.0.0:7641"
    assert cfg.advertise_addr == "127.0.0.1:7641" and cfg.metrics_addr == "0.0.0.0:9641"
    assert config.parse(["--listen", "10.1.2.3:9000"]).advertise_addr == "10.1.2.3:9000"
    assert config.parse(["--listen", "0.0.0.0:9000", "--advertise-addr", "10.9.9.9"]
                        ).advertise_addr == "10.9.9.9:9000"
    monkeypatch.setenv("KRAN_CONTROLLER", "ctl:1000")
    assert config.parse([]).controller == "ctl:1000"


def test_labels() -> None:
    cfg = config.parse(["--label", "zone=a", "--label", "ssd", "--label", "k=v=w"])
    assert cfg.labels == {"zone": "a", "ssd": "", "k": "v=w"}
    with pytest.raises(errors.InvalidArgument, match="key=value"):
        config.parse(["--label", "=x"])


def test_cgroup_parent_and_an_absolute_state_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KRAN_AGENT_CGROUP_PARENT", raising=False)
    cfg = config.parse(["--state-dir=relative/state"])
    assert cfg.cgroup_parent == "kran" and cfg.state_dir == Path.cwd() / "relative/state"
    assert config.parse(["--cgroup-parent=/system.slice/kran/"]).cgroup_parent == "system.slice/kran"
    monkeypatch.setenv("KRAN_AGENT_CGROUP_PARENT", "lab-1")
    assert config.parse([]).cgroup_parent == "lab-1"
    for bad in ("", "/", "a/../b", "a//b"):
        with pytest.raises(errors.InvalidArgument, match="--cgroup-parent"):
            config.parse([f"--cgroup-parent={bad}"])


def test_several_controllers(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config.parse(["--controller", "10.0.0.1, 10.0.0.2:7650,,10.0.0.1:7640"])
    assert cfg.controller == "10.0.0.1:7640,10.0.0.2:7650"
    assert cfg.controllers == ("10.0.0.1:7640", "10.0.0.2:7650")
    monkeypatch.setenv("KRAN_CONTROLLER", "a:1,b:2")
    assert config.parse([]).controllers == ("a:1", "b:2")
    for bad in (",", "a:1,b:notaport"):
        with pytest.raises(errors.InvalidArgument, match="--controller"):
            config.parse(["--controller", bad])
