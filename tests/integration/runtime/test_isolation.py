"""What the process inside sees: pid 1, hostname, mounts, masks, user, env, cwd, capabilities, limits."""

from __future__ import annotations

import json

from agent.runtime.runtime import Runtime
from tests.integration.runtime.conftest import cgroup_dirs, run

DOCKER_DEFAULT_CAPS = "00000000a80425fb"


def _output(rt: Runtime, spec) -> tuple[int, str]:
    async def scenario() -> tuple[int, str]:
        await rt.create(spec)
        await rt.start(spec.id)
        status = await rt.wait(spec.id, timeout=20)
        lines = rt.log_path(spec.id).read_text().splitlines()
        return status.exit_code, "".join(json.loads(line)["log"] for line in lines)
    return run(scenario())


def _status_field(output: str, name: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith(f"{name}:"))


def test_namespaces_mounts_and_masks(runtime, spec) -> None:
    script = ("echo pid=$$; hostname; grep -c . /proc/self/mounts >/dev/null && echo proc=ok; "
              "wc -c < /proc/keys; wc -c < /proc/timer_list; ls /proc/acpi | wc -l; "
              "touch /proc/sysrq-trigger 2>/dev/null || echo sysrq=ro; "
              "touch /sys/x 2>/dev/null || echo sys=ro; "
              "ls -l /dev/null | cut -c1; ls /dev/pts; cat /sys/class/net/lo/flags; ls /sys/class/net; "
              "cat /etc/hostname; test -d /proc/1/root && echo root=ok")
    code, out = _output(runtime, spec("sh", "-c", script, hostname="box1"))
    assert code == 0, out
    assert out.splitlines() == ["pid=1", "box1", "proc=ok", "0", "0", "0", "sysrq=ro", "sys=ro", "c", "ptmx",
                                "0x9", "lo", "box1", "root=ok"]


def test_hostname_defaults_to_short_id(runtime, spec) -> None:
    container = spec("hostname", id="0123456789abcdef0123")
    code, out = _output(runtime, container)
    assert (code, out) == (0, "0123456789ab\n")


def test_root_has_docker_capabilities_and_no_new_privs(runtime, spec) -> None:
    code, out = _output(runtime, spec("cat", "/proc/self/status"))
    assert code == 0
    assert _status_field(out, "CapEff") == DOCKER_DEFAULT_CAPS
    assert _status_field(out, "CapPrm") == DOCKER_DEFAULT_CAPS
    assert _status_field(out, "CapBnd") == DOCKER_DEFAULT_CAPS
    assert _status_field(out, "CapInh") == "0000000000000000"
    assert _status_field(out, "CapAmb") == "0000000000000000"
    assert _status_field(out, "NoNewPrivs") == "1"


def test_user_env_and_cwd(runtime, spec) -> None:
    container = spec("sh", "-c", "id; echo $GREETING; echo $HOME; pwd; grep CapEff /proc/self/status",
                     user="nobody", env=["GREETING=hello"], cwd="/work/dir")
    code, out = _output(runtime, container)
    assert code == 0, out
    assert out.splitlines() == ["uid=65534(nobody) gid=65534(nogroup) groups=1(daemon),65534(nogroup)",
                                "hello", "/nonexistent", "/work/dir", "CapEff:\t0000000000000000"]


def test_numeric_user_and_group(runtime, spec) -> None:
    code, out = _output(runtime, spec("id", "-u", user="1234:1"))
    assert (code, out) == (0, "1234\n")


def test_limits_are_in_the_cgroup(runtime, spec) -> None:
    async def scenario() -> None:
        container = spec("sleep", "100", memory_limit=64 << 20, pids_limit=50, cpu_quota=50000)
        await runtime.create(container)
        pid = runtime.state(container.id).pid
        dirs = cgroup_dirs(runtime.cgroup_parent, container.id)
        by_controller = {d.parts[4]: d for d in dirs}  # /sys/fs/cgroup/<controller>/...
        assert (by_controller["memory"] / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
        assert (by_controller["pids"] / "pids.max").read_text().strip() == "50"
        assert (by_controller["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
        for d in dirs:
            assert str(pid) in (d / "cgroup.procs").read_text().split()
        await runtime.start(container.id)
        await runtime.kill(container.id, 9)
        await runtime.wait(container.id, timeout=10)
    run(scenario())


def test_pids_limit_stops_fork_bombs(runtime, spec) -> None:
    code, out = _output(runtime, spec("sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo done",
                                      pids_limit=4))
    assert "can't fork" in out or "Resource temporarily unavailable" in out
