"""A private one-node kran cluster for the end-to-end figures.

kran-controller (with its embedded etcd) and one kran-agent on free
loopback ports, with their state under the bench's temporary directory, so
the bench never touches a `make up` cluster. Started and stopped by pid with
the integration tests' process helpers; containers are removed before the
agent stops, and any shim that outlives it is killed by the pid its bundle
recorded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from agent import linux
from bench.start_latency.memory import descendants, live_shims
from tests.procs import BIN, Processes, wait_until

KRAN = BIN / "kran"


class KranCluster:
    """kran-controller + kran-agent under `workdir`/kran, and the `kran` CLI pointed at them."""

    def __init__(self, workdir: Path):
        self.dir = workdir / "kran"
        self.dir.mkdir()
        self.processes = Processes(self.dir)
        self.controller = None
        self.agent = None

    def start(self, busybox_tar: Path) -> None:
        """Start both, wait for the node to be Ready, import busybox:latest (CMD sh)."""
        (self.dir / "controller").mkdir()
        (self.dir / "agent").mkdir()
        self.controller = self.processes.controller(self.dir / "controller")
        self.agent = self.processes.agent(self.dir / "agent", self.controller.address, hostname="bench")
        wait_until(lambda: "Ready" in self.kran("node", "ls").stdout.decode(), 60, interval=0.3,
                   what="the bench node to be Ready")
        self.kran("import", str(busybox_tar), "busybox:latest", "-c", 'CMD ["sh"]', timeout=120)

    @property
    def env(self) -> dict[str, str]:
        """The environment that points `kran` at this cluster."""
        return {**os.environ, "KRAN_HOST": self.controller.address}

    def argv(self, *args: str) -> list[str]:
        """The command line of `kran args...`."""
        return [str(KRAN), *args]

    def kran(self, *args: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run the kran CLI; RuntimeError with its stderr if check and it fails."""
        done = subprocess.run(self.argv(*args), capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=self.env)
        if check and done.returncode != 0:
            raise RuntimeError(f"kran {' '.join(args)} exited {done.returncode}: "
                               f"{done.stderr.decode(errors='replace').strip()}")
        return done

    def daemon_pids(self) -> list[int]:
        """The controller, its etcd, the agent and its forkserver (not the shims)."""
        pids: list[int] = []
        for proc in (self.controller, self.agent):
            if proc is not None and proc.alive():
                pids += descendants(proc.pid)
        shims = set(self.shim_pids())
        return [p for p in pids if p not in shims]

    def shim_pids(self) -> list[int]:
        """The live shims of this agent's containers."""
        return sorted(shim for shim, _ in live_shims(self.dir / "agent").values())

    def remove_all(self) -> None:
        """Remove every container, running or not."""
        ids = self.kran("ps", "-a", "-q", "--no-trunc", check=False).stdout.decode().split()
        for start in range(0, len(ids), 50):
            self.kran("rm", "-f", *ids[start:start + 50], check=False, timeout=300)

    def stop(self) -> None:
        """Remove the containers, stop the processes, kill leftover shims by pid, unmount."""
        if self.agent is not None and self.agent.alive():
            with contextlib.suppress(Exception):
                self.remove_all()
        self.processes.cleanup()
        for shim, init in live_shims(self.dir).values():
            for pid in (init, shim):  # init first: pid 1 of its namespace takes the rest with it
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        for point in linux.mounts_below(self.dir):
            with contextlib.suppress(OSError):
                linux.unmount(point)
