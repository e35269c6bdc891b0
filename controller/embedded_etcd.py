"""The single-member etcd a controller runs itself when given no --etcd.

etcd listens only on loopback, keeps its data in <state-dir>/etcd and writes
its output to <state-dir>/etcd/etcd.log. It is started through
`setpriv --pdeathsig KILL`, so it dies with the controller even after a
kill -9, and a pid file lets the next start reap one that survived anyway.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from controller.store.etcd import EtcdStore
from kran import errors

log = logging.getLogger(__name__)

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


class EtcdStartError(Exception):
    """The embedded etcd could not be started; the message says why."""


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _is_our_etcd(pid: int, data_dir: Path) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(argv) and Path(argv[0].decode(errors="replace")).name == "etcd" \
        and f"--data-dir={data_dir}".encode() in argv


class EmbeddedEtcd:
    """An etcd child process bound to 127.0.0.1:client_port/peer_port."""

    def __init__(self, state_dir: Path, client_port: int, peer_port: int,
                 binary: str = "etcd") -> None:
        self.data_dir = Path(state_dir) / "etcd"
        self.client_port = client_port
        self.peer_port = peer_port
        self.binary = binary
        self.log_path = self.data_dir / "etcd.log"
        self.pid_path = self.data_dir / "etcd.pid"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The client endpoint, host:port."""
        return f"127.0.0.1:{self.client_port}"

    def _argv(self) -> list[str]:
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            self.binary, "--name=kran", f"--data-dir={self.data_dir}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=kran={peer}", "--initial-cluster-state=new",
            "--initial-cluster-token=kran",
        ]

    def _reap_stale(self) -> None:
        """Kill an etcd a previous controller left running on our data dir."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return
        if _is_our_etcd(pid, self.data_dir.resolve()) or _is_our_etcd(pid, self.data_dir):
            log.warning("killing etcd left over by a previous controller", extra={"pid": pid})
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        self.pid_path.unlink(missing_ok=True)

    def start(self) -> None:
        """Start etcd; call from the main thread (pdeathsig follows the thread)."""
        if shutil.which(self.binary) is None:
            raise EtcdStartError(f"cannot find {self.binary!r} on PATH; install etcd-server")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        self._reap_stale()
        for port, what, flag in ((self.client_port, "client", "--etcd-client-port"),
                                 (self.peer_port, "peer", "--etcd-peer-port")):
            if _port_in_use(port):
                raise EtcdStartError(
                    f"port 127.0.0.1:{port} for the embedded etcd's {what} URL is already in "
                    f"use; stop what holds it or choose another port with {flag}")
        argv = self._argv()
        if shutil.which("setpriv"):
            argv = ["setpriv", "--pdeathsig", "KILL", "--"] + argv
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env,
                                            start_new_session=True)
        self.pid_path.write_text(f"{self.process.pid}\n")
        log.info("started embedded etcd", extra={"pid": self.process.pid,
                                                 "etcd": self.endpoint, "log": str(self.log_path)})

    async def wait_ready(self, store: EtcdStore, timeout: float = START_TIMEOUT) -> str:
        """Wait until etcd answers; returns its version or raises EtcdStartError."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise EtcdStartError(
                    f"embedded etcd exited with status {self.process.returncode}: "
                    f"{self._log_tail()} (full log: {self.log_path})")
            try:
                return (await store.status()).version
            except errors.Unavailable:
                if time.monotonic() > deadline:
                    raise EtcdStartError(
                        f"embedded etcd did not answer on {self.endpoint} within {timeout:.0f} s; "
                        f"see {self.log_path}") from None
                await asyncio.sleep(0.2)

    def _log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:])

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM etcd, then SIGKILL if it has not exited within timeout."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if process.poll() is None:
                log.warning("embedded etcd did not stop in time; killing it",
                            extra={"pid": process.pid})
                process.kill()
                process.wait()
        self.pid_path.unlink(missing_ok=True)
        log.info("stopped embedded etcd", extra={"pid": process.pid})
