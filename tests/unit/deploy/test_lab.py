"""The lab's pure parts: what a Lab is made of before up(), lab.json, and reading /proc/net/tcp."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

from deploy import labprocs, labstate
from deploy.lab import Lab
from kran import errors


def test_a_lab_before_up(tmp_path: Path) -> None:
    lab = Lab(hosts=2, controllers=2, root=tmp_path)
    assert [(h.name, h.address, h.netns) for h in lab.hosts] == [
        ("h1", "10.213.0.11", "kranlab-h1"), ("h2", "10.213.0.12", "kranlab-h2")]
    assert lab.hosts[0].endpoint == "10.213.0.11:7641" and lab.hosts[0].state_dir == tmp_path / "kranlab/h1"
    assert lab.controller_endpoints == ["10.213.0.1:7640", "10.213.0.1:7650"]
    assert lab.env()["KRAN_HOST"] == "10.213.0.1:7640,10.213.0.1:7650"
    assert len(lab.etcd) == 3 and lab.bridge == "kranlab0"
    with pytest.raises(errors.NotFound, match="no host 'h3'"):
        lab.host("h3")


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "Lab"}, "lab name"),
    ({"name": "a-b"}, "lab name"),
    ({"name": "averylongname", "hosts": 3}, "15 characters"),
    ({"subnet": "10.0.0.0/30"}, "room for 3 hosts"),
    ({"subnet": "fd00::/64"}, "IPv4"),
    ({"subnet": "nonsense"}, "subnet"),
    ({"hosts": 0}, "at least one host"),
    ({"node_ttl": 1}, "node_ttl"),
])
def test_bad_labs_are_refused(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        Lab(root=tmp_path, **kwargs)


def test_lab_json_is_what_another_process_reads(tmp_path: Path) -> None:
    lab = Lab(hosts=1, controllers=1, root=tmp_path, subnet="10.9.9.0/24")
    lab.hosts[0].agent_pid, lab.etcd[0].client_port, lab.controllers[0].pid = 41, 12400, 42
    lab.dir.mkdir(parents=True)
    lab._save()
    again = Lab(root=tmp_path)  # the defaults give way to what the file says
    assert again.hosts == lab.hosts and again.etcd == lab.etcd and again.controllers == lab.controllers
    assert str(again.network) == "10.9.9.0/24" and again.gateway == "10.9.9.1"
    assert labstate.read(tmp_path / "missing.json") is None
    lab.state_file.write_text("{not json")
    with pytest.raises(errors.FailedPrecondition, match="damaged"):
        Lab(root=tmp_path)


def test_a_listening_socket_is_seen_in_proc_net_tcp() -> None:
    assert labprocs._proc_net(ipaddress.IPv4Address("10.213.0.1")) == "0100D50A"
    assert labprocs._proc_net(ipaddress.IPv6Address("::ffff:10.213.0.1")) == "0000000000000000FFFF00000100D50A"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        assert not labprocs.listening(os.getpid(), "127.0.0.1", port)
        server.listen()
        assert labprocs.listening(os.getpid(), "127.0.0.1", port)
        assert not labprocs.listening(os.getpid(), "127.0.0.2", port)
