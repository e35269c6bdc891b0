"""Helpers for tests that run kran's real processes.

Everything here works by pid: a `Processes` group remembers each process it
started (and the embedded etcd a controller starts, from its pid file) and
kills exactly those at teardown. Nothing is ever killed by name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from agent.linux import mounts_below, unmount

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on host:port."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], T], timeout: float = 20.0, interval: float = 0.1,
               what: str = "condition") -> T:
    """Poll check() until it returns something truthy; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except Exception:  # noqa: BLE001 - not ready yet; the last error is re-raised below
            if time.monotonic() > deadline:
                raise
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def etcd_healthy(endpoint: str) -> bool:
    """Whether the etcd at endpoint (host:port) says it is healthy."""
    try:
        with urllib.request.urlopen(f"http://{endpoint}/health", timeout=2) as reply:
            return json.loads(reply.read()).get("health") == "true"
    except (OSError, ValueError):
        return False


def pid_alive(pid: int) -> bool:
    """Whether pid is a running (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM pid, then SIGKILL if it is still alive after timeout."""
    for signum, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pid_alive(pid):
            return


@dataclass
class Proc:
    """A process started by a test, with its log file."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        """What the process has written so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if self.alive():
            stop_pid(self.pid, timeout)
        return self.process.wait()

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait()


@dataclass
class Controller(Proc):
    """A running kran-controller."""

    address: str = ""
    metrics_port: int = 0
    state_dir: Path = Path()
    etcd_endpoint: str = ""


@dataclass
class Agent(Proc):
    """A running kran-agent."""

    address: str = ""
    metrics_port: int = 0
    state_dir: Path = Path()


@dataclass
class Etcd(Proc):
    """A standalone etcd (for external-etcd tests)."""

    endpoint: str = ""
    client_port: int = 0
    peer_port: int = 0


class Processes:
    """Starts kran processes and kills every one of them (by pid) in cleanup()."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Proc] = []
        self.etcd_pid_files: list[Path] = []
        self._count = 0

    def start(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> Proc:
        """Start argv with its output in <workdir>/<name>-N.log."""
        self._count += 1
        log = self.workdir / f"{name}-{self._count}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, cwd=self.workdir,
                                       env={**os.environ, **(env or {})},
                                       start_new_session=True)
        proc = Proc(process, log)
        self.started.append(proc)
        return proc

    def _wait_serving(self, proc: Proc, port: int, what: str, timeout: float = 30.0) -> None:
        def up() -> bool:
            if not proc.alive():
                raise AssertionError(f"{what} exited with {proc.process.returncode}:\n"
                                     f"{proc.output()}")
            return port_open(port)
        try:
            wait_until(up, timeout, what=f"{what} on port {port}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {what} log ---\n{proc.output()}") from None

    def controller(self, state_dir: Path, *, node_ttl: int = 3, etcd: str = "",
                   port: int = 0, client_port: int = 0, peer_port: int = 0,
                   metrics_port: int = 0, wait: bool = True) -> Controller:
        """Start kran-controller (embedded etcd unless etcd is given) on free ports."""
        port = port or free_port()
        metrics_port = metrics_port or free_port()
        argv = [str(BIN / "kran-controller"), f"--listen=127.0.0.1:{port}",
                f"--metrics-addr=127.0.0.1:{metrics_port}", f"--state-dir={state_dir}",
                f"--node-ttl={node_ttl}"]
        if etcd:
            argv.append(f"--etcd={etcd}")
            endpoint = etcd
        else:
            client_port = client_port or free_port()
            peer_port = peer_port or free_port()
            argv += [f"--etcd-client-port={client_port}", f"--etcd-peer-port={peer_port}"]
            endpoint = f"127.0.0.1:{client_port}"
            self.etcd_pid_files.append(state_dir / "etcd" / "etcd.pid")
        proc = self.start(argv, "controller")
        controller = Controller(proc.process, proc.log, address=f"127.0.0.1:{port}",
                                metrics_port=metrics_port, state_dir=state_dir,
                                etcd_endpoint=endpoint)
        self.started[-1] = controller
        if wait:
            self._wait_serving(controller, port, "kran-controller")
        return controller

    def agent(self, state_dir: Path, controller: str, *, hostname: str = "node-1",
              port: int = 0, metrics_port: int = 0, labels: dict[str, str] | None = None,
              args: Sequence[str] = (), wait: bool = True) -> Agent:
        """Start kran-agent registering with controller, on free ports; args are more flags."""
        port = port or free_port()
        metrics_port = metrics_port or free_port()
        argv = [str(BIN / "kran-agent"), f"--controller={controller}",
                f"--listen=127.0.0.1:{port}", f"--metrics-addr=127.0.0.1:{metrics_port}",
                f"--state-dir={state_dir}", f"--hostname={hostname}"]
        argv += [f"--label={k}={v}" for k, v in (labels or {}).items()]
        argv += args
        proc = self.start(argv, "agent")
        agent = Agent(proc.process, proc.log, address=f"127.0.0.1:{port}",
                      metrics_port=metrics_port, state_dir=state_dir)
        self.started[-1] = agent
        if wait:
            self._wait_serving(agent, port, "kran-agent")
        return agent

    def etcd(self, data_dir: Path, *, client_port: int = 0, peer_port: int = 0) -> Etcd:
        """Start a single-member etcd on loopback and wait until it serves."""
        client_port = client_port or free_port()
        peer_port = peer_port or free_port()
        client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
        argv = ["etcd", "--name=test", f"--data-dir={data_dir}",
                f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=test={peer}"]
        proc = self.start(argv, "etcd")
        etcd = Etcd(proc.process, proc.log, endpoint=f"127.0.0.1:{client_port}",
                    client_port=client_port, peer_port=peer_port)
        self.started[-1] = etcd
        self._wait_serving(etcd, client_port, "etcd")
        wait_until(lambda: etcd_healthy(etcd.endpoint), 20, what="etcd to be healthy")
        return etcd

    def cleanup(self) -> None:
        """Kill every process started here, and any embedded etcd they left."""
        for proc in reversed(self.started):
            proc.stop(timeout=10)
        for pid_file in self.etcd_pid_files:
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if f"--data-dir={pid_file.parent}".encode() in argv:
                stop_pid(pid)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first: what a test left mounted."""
    path = path.resolve()
    return [str(p) for p in mounts_below(path)] + ([str(path)] if os.path.ismount(path) else [])


def unmount_leftovers(path: Path) -> list[str]:
    """Detach whatever is still mounted at or below `path`; returns what was (a test's leak)."""
    left = mounts_under(path)
    for point in left:
        unmount(point)
    return left
