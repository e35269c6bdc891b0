"""`kran version` and `kran info` against a real cluster."""

from __future__ import annotations

import re

import kran


def test_version(cluster):
    out = cluster.ok("version")
    assert out.count(kran.__version__) >= 2, out     # client and server
    assert "v1" in out
    assert re.search(r"etcd", out, re.IGNORECASE), out


def test_host_flag_overrides_environment(cluster):
    result = cluster.kran("-H", cluster.address, "version", env={"KRAN_HOST": "127.0.0.1:1"})
    assert result.code == 0, result.err


def info_field(out: str, name: str) -> str:
    match = re.search(rf"^\s*{re.escape(name)}:\s*(.*)$", out, re.MULTILINE)
    assert match, f"no {name!r} in:\n{out}"
    return match.group(1).strip()


def test_info_counts(cluster, hello_tar):
    out = cluster.ok("info")
    assert cluster.address in out
    assert cluster.controller.etcd_endpoint in out
    assert info_field(out, "Nodes") == "1"
    assert info_field(out, "Containers") == "0"
    images = int(info_field(out, "Images"))

    cluster.ok("import", str(hello_tar), "info-hello:1")
    assert int(info_field(cluster.ok("info"), "Images")) == images + 1
    cluster.ok("rmi", "info-hello:1")
    assert int(info_field(cluster.ok("info"), "Images")) == images
