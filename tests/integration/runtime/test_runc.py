"""Cross-check: runc runs the same bundle, and the process sees the same things."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from agent import linux
from agent.runtime import oci
from agent.runtime.runtime import Runtime
from tests.integration.runtime.conftest import run

RUNC = shutil.which("runc") or "/usr/sbin/runc"
SCRIPT = ("hostname; id; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; echo $$; pwd; "
          "cut -d' ' -f2,3 /proc/mounts | grep -vE '^/ ' | sort")


def _limits(pid: int) -> tuple[str, str]:
    """The memory and pids limits of pid's cgroup, read from the host."""
    paths = dict(line.split(":", 2)[1:] for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines())
    memory = Path("/sys/fs/cgroup/memory", paths["memory"].strip("/"), "memory.limit_in_bytes").read_text()
    pids = Path("/sys/fs/cgroup/pids", paths["pids"].strip("/"), "pids.max").read_text()
    return memory.strip(), pids.strip()


def _kran(rt: Runtime, container) -> tuple[tuple[str, str], str]:
    async def scenario() -> tuple[tuple[str, str], str]:
        await rt.create(container)
        limits = _limits(rt.state(container.id).pid)
        await rt.start(container.id)
        await rt.wait(container.id, timeout=20)
        lines = rt.log_path(container.id).read_text().splitlines()
        return limits, "".join(json.loads(line)["log"] for line in lines)
    return run(scenario())


def _runc(bundle: Path, state_root: Path, name: str) -> tuple[tuple[str, str], str]:
    config = json.loads((bundle / "config.json").read_text())
    rootfs = str(bundle / "rootfs")
    # runc expects the root already mounted, as containerd does it.
    linux.mount_overlay(rootfs, [Path(p) for p in oci.overlay_lowers(config)], bundle / "upper",
                        bundle / "work", nosuid=False)
    try:
        runc = [RUNC, "--root", str(state_root)]
        created = subprocess.Popen([*runc, "create", "--bundle", str(bundle), name],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # runc create exits once the container waits for start; the pipe stays with the container.
        assert created.wait(timeout=30) == 0, created.stderr.read()
        try:
            pid = json.loads(subprocess.run([*runc, "state", name], capture_output=True, check=True).stdout)["pid"]
            limits = _limits(pid)
            subprocess.run([*runc, "start", name], check=True, timeout=30)
            output = created.stdout.read().decode()
        finally:
            subprocess.run([*runc, "delete", "--force", name], capture_output=True, timeout=30)
            created.stdout.close()
            created.stderr.close()
    finally:
        linux.umount2(rootfs, linux.MNT_DETACH)
    return limits, output


def test_runc_sees_the_same(runtime, spec, tmp_path) -> None:
    container = spec("sh", "-c", SCRIPT, user="nobody", cwd="/tmp", hostname="cross",
                     memory_limit=32 << 20, pids_limit=20)
    ours = _kran(runtime, container)
    theirs = _runc(runtime.bundle(container.id), tmp_path / "runc", f"{container.id}-runc")
    assert ours[0] == theirs[0] == (str(32 << 20), "20")
    assert ours[1] == theirs[1]
    lines = ours[1].splitlines()
    assert lines[:2] == ["cross", "uid=65534(nobody) gid=65534(nogroup) groups=1(daemon),65534(nogroup)"]
    assert "/proc proc" in lines and "/dev/pts devpts" in lines
