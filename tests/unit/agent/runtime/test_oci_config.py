"""The bundle's OCI config: Docker's defaults, env, resources, annotations."""

from __future__ import annotations

from pathlib import Path

from agent.runtime.oci import build_config, capability_mask, overlay_lowers
from agent.runtime.spec import ContainerSpec, User


def _spec(**kwargs) -> ContainerSpec:
    return ContainerSpec(id="0123456789abcdef", lowers=[Path("/l/2"), Path("/l/1")], args=["sh"], **kwargs)


def test_defaults() -> None:
    config = build_config(_spec(), User(), Path("/b/c1"), "kran")
    assert config["hostname"] == "0123456789ab"
    assert capability_mask(config["process"]["capabilities"]["bounding"]) == 0xa80425fb
    assert config["process"]["noNewPrivileges"] is True
    assert config["process"]["env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=0123456789ab", "HOME=/"]
    assert {n["type"] for n in config["linux"]["namespaces"]} == {"pid", "network", "ipc", "uts", "mount"}
    assert config["linux"]["resources"] == {}
    assert config["linux"]["cgroupsPath"] == "kran/0123456789abcdef"
    assert "/proc/kcore" in config["linux"]["maskedPaths"] and "/proc/sys" in config["linux"]["readonlyPaths"]
    destinations = [m["destination"] for m in config["mounts"]]
    assert destinations[:6] == ["/proc", "/dev", "/dev/pts", "/sys", "/dev/mqueue", "/dev/shm"]
    assert {"source": "/b/c1/hostname", "destination": "/etc/hostname"}.items() <= config["mounts"][6].items()
    assert config["annotations"]["io.kran.log-path"] == "/b/c1/container.log"


def test_env_user_and_limits() -> None:
    spec = _spec(env=["PATH=/bin", "A=1"], tty=True, hostname="h", memory_limit=1 << 30, cpu_quota=50000,
                 pids_limit=10, init=True, user="x")
    config = build_config(spec, User(uid=5, gid=6, additional_gids=[6, 7], home="/home/x"), Path("/b"), "p")
    assert config["process"]["env"] == ["HOSTNAME=h", "HOME=/home/x", "TERM=xterm", "PATH=/bin", "A=1"]
    assert config["process"]["user"] == {"uid": 5, "gid": 6, "additionalGids": [6, 7]}
    assert config["process"]["terminal"] is True
    assert config["linux"]["resources"] == {"memory": {"limit": 1 << 30, "swap": 2 << 30},
                                            "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 10}}
    assert config["annotations"]["io.kran.init"] == "true"
    assert overlay_lowers(config) == ["/l/2", "/l/1"]
