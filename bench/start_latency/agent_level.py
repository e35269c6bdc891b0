"""Agent level: kran's Runtime against `runc run`, on the same busybox layers.

Both run `true` from the busybox image the agent would use (imported into a
private image store from out/images/busybox.tar) with the same OCI config:
kran's Runtime creates, starts and waits for the container; runc gets a
bundle whose config.json is the one kran writes, with the same layers
mounted as an overlay at its rootfs (runc expects its root mounted, as
containerd does it). The runs are interleaved so both see the same machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from agent import linux
from agent.images.store import ImageStore
from agent.runtime import oci
from agent.runtime.runtime import Runtime
from agent.runtime.spec import ContainerSpec
from agent.runtime.state import process_start_time
from agent.runtime.users import resolve_in_image
from bench.start_latency.memory import pss
from bench.start_latency.stats import Summary

RUNC = shutil.which("runc") or "/usr/sbin/runc"
RUN_TIMEOUT = 30.0


@dataclass
class AgentLevel:
    """What the agent-level phase measured (seconds)."""

    kran: Summary                # create + start + wait
    kran_with_delete: Summary    # ... + delete (runc run deletes too)
    runc: Summary                # runc run


def busybox_layers(tarball: Path, store_root: Path) -> list[Path]:
    """Import the busybox rootfs into a private store; its layer dirs, top first."""
    store = ImageStore(store_root)
    try:
        store.import_rootfs(tarball, "busybox:latest", ['CMD ["sh"]'])
        return store.image_layers("busybox:latest")
    finally:
        store.close()


class RuncBundle:
    """A runc bundle with kran's config for `true` and the busybox overlay mounted at rootfs."""

    def __init__(self, workdir: Path, layers: list[Path], cgroup_parent: str):
        self.dir = workdir / "runc-bundle"
        self.root = workdir / "runc-state"
        self.dir.mkdir()
        spec = ContainerSpec(id="runc-bench", lowers=layers, args=["true"])
        config = oci.build_config(spec, resolve_in_image("", layers), self.dir, cgroup_parent)
        (self.dir / "config.json").write_text(json.dumps(config, indent=1))
        oci.write_etc_files(self.dir, config["hostname"])
        for name in ("rootfs", "upper", "work"):
            (self.dir / name).mkdir()
        linux.mount_overlay(self.dir / "rootfs", layers, self.dir / "upper", self.dir / "work", nosuid=False)
        self._runs = 0

    def run(self) -> float:
        """One `runc run` of `true`; its wall time in seconds."""
        self._runs += 1
        name = f"runc-bench-{os.getpid()}-{self._runs}"
        argv = [RUNC, "--root", str(self.root), "run", "--bundle", str(self.dir), name]
        started = time.perf_counter()
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=RUN_TIMEOUT)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            subprocess.run([RUNC, "--root", str(self.root), "delete", "--force", name],
                           capture_output=True, timeout=RUN_TIMEOUT)
            raise RuntimeError(f"runc run exited {done.returncode}: {done.stderr.decode().strip()}")
        return elapsed

    def close(self) -> None:
        """Unmount the rootfs (runc removed its containers as each run ended)."""
        with contextlib.suppress(OSError):
            linux.unmount(self.dir / "rootfs")


async def kran_true(runtime: Runtime, layers: list[Path], container_id: str) -> tuple[float, float]:
    """(create + start + wait, the same + delete) of one `true` container, in seconds."""
    spec = ContainerSpec(id=container_id, lowers=layers, args=["true"])
    started = time.perf_counter()
    try:
        await runtime.create(spec)
        await runtime.start(container_id)
        status = await runtime.wait(container_id, timeout=RUN_TIMEOUT)
        ran = time.perf_counter() - started
    finally:
        if runtime.bundle(container_id).exists():
            await runtime.delete(container_id, force=True)
    if status.exit_code != 0:
        raise RuntimeError(f"kran's `true` exited {status.exit_code}: {status.error}")
    return ran, time.perf_counter() - started


async def measure(runtime: Runtime, layers: list[Path], runc: RuncBundle, runs: int,
                  warmup: int = 3) -> AgentLevel:
    """Interleaved runs of kran and runc; the first `warmup` of each are not counted."""
    kran, kran_delete, theirs = [], [], []
    for i in range(warmup + runs):
        ours = await kran_true(runtime, layers, f"bench-{os.getpid()}-{i}")
        runc_time = runc.run()
        if i >= warmup:
            kran.append(ours[0])
            kran_delete.append(ours[1])
            theirs.append(runc_time)
    return AgentLevel(Summary.of(kran), Summary.of(kran_delete), Summary.of(theirs))


async def idle_shims(runtime: Runtime, layers: list[Path], count: int) -> tuple[list[int], list[int]]:
    """Start `count` idle `sleep 1000` containers; (PSS of each shim, their shim pids).

    The containers are left running: the caller measures, then calls remove_all().
    """
    shims = []
    for i in range(count):
        container_id = f"idle-{os.getpid()}-{i}"
        await runtime.create(ContainerSpec(id=container_id, lowers=layers, args=["sleep", "1000"]))
        await runtime.start(container_id)
        shims.append(runtime.state(container_id).shim_pid)
    await asyncio.sleep(1.0)  # let each shim settle into its idle loop before reading its memory
    return [pss(pid) for pid in shims], shims


async def remove_all(runtime: Runtime) -> list[str]:
    """Delete every container of this runtime; what could not be removed."""
    problems = []
    for container_id in runtime.list():
        shim = runtime.state(container_id).shim_pid
        try:
            await runtime.delete(container_id, force=True)
        except Exception as exc:  # noqa: BLE001 - cleanup goes on; the report names what failed
            problems.append(f"{container_id}: {exc}")
        if shim and process_start_time(shim) is not None:
            problems.append(f"{container_id}: shim {shim} still alive")
    return problems
