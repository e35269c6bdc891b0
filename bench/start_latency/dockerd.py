"""A private dockerd for the comparison, confined to a temporary directory.

It has its own data root, exec root and unix socket under that directory, no
bridge, no iptables or masquerading (it changes nothing in the host's
network), and a proxy that does not exist (127.0.0.1:1) so it can never pull
from the internet: its busybox comes from `docker import` of the same rootfs
tarball kran imports. Everything it started is stopped by pid afterwards,
and whatever it left mounted under its directory is unmounted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from agent import linux
from bench.start_latency.memory import descendants
from tests.procs import pid_alive, stop_pid

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
# Debian's CLI matches Debian's dockerd; any docker CLI would negotiate the API version.
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")
START_TIMEOUT = 60.0
NO_PROXY_ENV = {"HTTP_PROXY": "http://127.0.0.1:1", "HTTPS_PROXY": "http://127.0.0.1:1",
                "http_proxy": "http://127.0.0.1:1", "https_proxy": "http://127.0.0.1:1",
                "NO_PROXY": "", "no_proxy": ""}


class DockerUnavailable(Exception):
    """dockerd is not installed or cannot run here; the message says why."""


class DockerDaemon:
    """dockerd (with the containerd it manages) under `workdir`/docker."""

    def __init__(self, workdir: Path, no_proxy: str = ""):
        """`no_proxy`: the hosts it may reach without the dead proxy (NO_PROXY), e.g. a loopback registry."""
        self.dir = workdir / "docker"
        self.proxy_env = {**NO_PROXY_ENV, "NO_PROXY": no_proxy, "no_proxy": no_proxy}
        # Its containers' cgroups go below a parent of its own, removed in stop().
        self.cgroup_parent = f"{workdir.name}-docker"
        self.socket = self.dir / "docker.sock"
        self.log = self.dir / "dockerd.log"
        self.process: subprocess.Popen | None = None
        self._family: set[int] = set()

    @property
    def host(self) -> str:
        """The -H value for the docker CLI."""
        return f"unix://{self.socket}"

    def start(self) -> None:
        """Start dockerd and wait until it answers; DockerUnavailable with its error if it cannot."""
        if not Path(DOCKERD).exists():
            raise DockerUnavailable(f"{DOCKERD} is not installed (make bench installs docker.io)")
        self.dir.mkdir()
        (self.dir / "daemon.json").write_text("{}")
        argv = [DOCKERD, f"--data-root={self.dir / 'data'}", f"--exec-root={self.dir / 'exec'}",
                f"--host={self.host}", f"--pidfile={self.dir / 'dockerd.pid'}",
                f"--config-file={self.dir / 'daemon.json'}",
                "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                "--userland-proxy=false", f"--cgroup-parent={self.cgroup_parent}", "--log-level=warn"]
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), **self.proxy_env}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise DockerUnavailable(f"dockerd exited {self.process.returncode}: {self._errors()}")
            if self.socket.exists() and self.docker("version", check=False, timeout=10).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise DockerUnavailable(f"dockerd did not answer within {START_TIMEOUT:.0f}s: {self._errors()}")
            time.sleep(0.2)
        self._family.update(descendants(self.process.pid))

    def _errors(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        wanted = [line for line in lines if "level=error" in line or "level=fatal" in line or "failed" in line]
        return " | ".join((wanted or lines)[-5:]) or "(no output)"

    @property
    def env(self) -> dict[str, str]:
        """The docker CLI's environment (no way to reach a registry but those in no_proxy)."""
        return {**os.environ, **self.proxy_env}

    def argv(self, *args: str) -> list[str]:
        """The command line of `docker args...` against this daemon."""
        return [DOCKER, "-H", self.host, *args]

    def docker(self, *args: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run the docker CLI against this daemon; RuntimeError with its stderr if check and it fails."""
        done = subprocess.run(self.argv(*args), capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=self.env)
        if check and done.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} exited {done.returncode}: "
                               f"{done.stderr.decode(errors='replace').strip()}")
        return done

    def version(self) -> str:
        """The server's version."""
        return self.docker("version", "--format", "{{.Server.Version}}").stdout.decode().strip()

    def import_busybox(self, tarball: Path) -> None:
        """busybox:latest from the same rootfs tarball kran imports, with CMD sh."""
        self.docker("import", "--change", 'CMD ["sh"]', str(tarball), "busybox:latest", timeout=120)

    def daemon_pids(self) -> list[int]:
        """dockerd and containerd (not the shims, which are not their children)."""
        return descendants(self.process.pid) if self.process else []

    def shim_pids(self) -> list[int]:
        """The containerd shims of the running containers (each container's init's parent)."""
        out = self.docker("ps", "-q").stdout.decode().split()
        if not out:
            return []
        pids = self.docker("inspect", "--format", "{{.State.Pid}}", *out, timeout=120).stdout.decode().split()
        shims = set()
        for pid in pids:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("PPid:"):
                        shims.add(int(line.split()[1]))
        return sorted(shims)

    def remove_all(self) -> None:
        """Remove every container, running or not."""
        ids = self.docker("ps", "-a", "-q", check=False).stdout.decode().split()
        for start in range(0, len(ids), 50):
            self.docker("rm", "-f", *ids[start:start + 50], check=False, timeout=300)

    def stop(self) -> None:
        """Stop dockerd (and its containerd), kill shims it left by pid, unmount and remove its directory."""
        if self.process is None:
            return
        with contextlib.suppress(Exception):
            if self.process.poll() is None:
                self.remove_all()
        family = self._family | set(descendants(self.process.pid))
        if self.process.poll() is None:
            stop_pid(self.process.pid, timeout=20)
        self.process.wait()
        for pid in sorted(family | set(self._ours())):
            if pid != self.process.pid and pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for point in linux.mounts_below(self.dir):
            with contextlib.suppress(OSError):
                linux.unmount(point)
        for parent in Path("/sys/fs/cgroup").glob(f"*/{self.cgroup_parent}"):
            for leftover in sorted((p for p in parent.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                                   reverse=True):
                with contextlib.suppress(OSError):
                    leftover.rmdir()
            with contextlib.suppress(OSError):
                parent.rmdir()
        self.process = None

    def _ours(self) -> list[int]:
        """Processes whose command line names this daemon's directory (containerd shims)."""
        marker = str(self.dir).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if marker in (entry / "cmdline").read_bytes():
                        found.append(int(entry.name))
        return found

    def info(self) -> dict:
        """`docker info` as a dict (storage driver, cgroup driver, runtime)."""
        return json.loads(self.docker("info", "--format", "{{json .}}").stdout)
