"""The controller's flags and their environment defaults."""

from __future__ import annotations

import pytest

from controller import config
from kran import errors


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LISTEN", "ETCD", "NODE_TTL", "METRICS_ADDR"):
        monkeypatch.delenv(config.ENV_PREFIX + name, raising=False)
    cfg = config.parse([])
    assert cfg.listen == "0.0.0.0:7640" and cfg.metrics_addr == "0.0.0.0:9640"
    assert cfg.etcd == [] and (cfg.etcd_client_port, cfg.etcd_peer_port) == (2379, 2380)
    assert cfg.node_ttl == 10 and cfg.state_dir == "/var/lib/kran"


def test_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRAN_CONTROLLER_NODE_TTL", "4")
    monkeypatch.setenv("KRAN_CONTROLLER_ETCD", "10.0.0.1,10.0.0.2:3379")
    cfg = config.parse(["--listen", "127.0.0.1:1234", "--metrics-addr", "none"])
    assert cfg.node_ttl == 4 and cfg.etcd == ["10.0.0.1:2379", "10.0.0.2:3379"]
    assert cfg.listen == "127.0.0.1:1234" and cfg.metrics_addr == ""
    assert config.parse(["--metrics-addr", ""]).metrics_addr == ""
    assert config.parse(["--listen", ":7000"]).listen == "0.0.0.0:7000"


@pytest.mark.parametrize("argv, message", [
    (["--node-ttl", "1"], "--node-ttl"),
    (["--listen", "host:http"], "--listen"),
    (["--etcd-peer-port", "0"], "--etcd-peer-port"),
    (["--etcd", "etcd-1:2379,etcd-2:notaport"], "etcd endpoint"),
])
def test_bad_values(argv: list[str], message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        config.parse(argv)


def test_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KRAN_CONTROLLER_STRATEGY", raising=False)
    assert config.parse([]).strategy == "spread"
    assert config.parse(["--strategy", "binpack"]).strategy == "binpack"
    monkeypatch.setenv("KRAN_CONTROLLER_STRATEGY", "random")
    assert config.parse([]).strategy == "random"
    with pytest.raises(SystemExit):
        config.parse(["--strategy", "fastest"])
