"""A real one-node kran cluster for the integration tests, driven through the
installed `kran` command the way a user drives it.

Each test module gets its own cluster: kran-controller with its embedded etcd
on free loopback ports and a short node TTL, and one kran-agent, both with
state in temporary directories. Nothing here touches /var/lib/kran or the
default ports, so a `make up` cluster can run beside the tests.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from kran.api.v1 import containers_pb2 as pb
from kran.api.v1 import images_pb2
from tests.integration.agentkit import CALL_TIMEOUT, AgentUnderTest, kill_cgroup
from tests.integration.registrykit import Registry, start_registry
from tests.integration.runtime.conftest import cgroup_dirs
from tests.procs import BIN, ROOT, Agent, Controller, Processes, free_port, unmount_leftovers, wait_until

NODE_TTL = 3
KRAN_TIMEOUT = 60


@dataclass
class Result:
    """What one `kran` run gave: exit code, stdout, stderr."""

    code: int
    out: str
    err: str
    out_bytes: bytes


def table(out: str) -> tuple[list[str], list[dict[str, str]]]:
    """Split a Docker-style table (columns two or more spaces apart) into rows."""
    lines = [line for line in out.splitlines() if line.strip()]
    header = re.split(r"\s{2,}", lines[0].strip())
    rows = [dict(zip(header, re.split(r"\s{2,}", line.strip()))) for line in lines[1:]]
    return header, rows


def columns(out: str) -> tuple[list[str], list[dict[str, str]]]:
    """Split a Docker-style table by its header's column positions.

    Unlike table(), an empty cell (PORTS of a container without ports) keeps
    the cells after it in their columns. A header is a word or words joined
    by single spaces ("CONTAINER ID").
    """
    lines = [line for line in out.splitlines() if line.strip()]
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
    header = [lines[0][a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
    rows = [{name: line[a:b].strip() for name, a, b in zip(header, starts, starts[1:] + [None])}
            for line in lines[1:]]
    return header, rows


class Terminal:
    """A `kran` command whose stdin, stdout and stderr are a pseudo-terminal, as at a user's terminal.

    Output accumulates in `output` (raw bytes, with the terminal's echo of
    what was typed). The command runs in its own session; close() kills it
    by pid if it is still running.
    """

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 24, cols: int = 80) -> None:
        self.master, follower = os.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.process = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower,
                                        env=env, start_new_session=True)
        os.close(follower)
        self.output = b""

    def _read(self, timeout: float) -> bool:
        """Read what is there within timeout; False once the terminal is closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every process holding the other side has exited
            return False
        self.output += data
        return bool(data)

    def send(self, data: bytes) -> None:
        """Type data (b"\\r" is Enter, b"\\x10\\x11" is Ctrl-P Ctrl-Q)."""
        os.write(self.master, data)

    def expect(self, pattern: bytes, timeout: float = 20.0) -> re.Match[bytes]:
        """Wait until the output matches the regex pattern; AssertionError with the output if not."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.output)
            if found:
                return found
            if time.monotonic() > deadline or not self._read(0.1) and self.process.poll() is not None:
                raise AssertionError(f"no {pattern!r} in the terminal's output:\n{self.output!r}")

    def wait(self, timeout: float = 20.0) -> int:
        """Wait for the command to exit, reading its output; its exit status."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout:.0f}s; output:\n{self.output!r}")
            self._read(0.1)
        while select.select([self.master], [], [], 0.05)[0] and self._read(0):
            pass  # what it wrote just before exiting
        return self.process.returncode

    def close(self) -> None:
        """Kill the command if it still runs, and close the terminal."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        os.close(self.master)


class Cluster:
    """kran-controller + one kran-agent, restartable, and a way to run `kran`.

    agent_args are more kran-agent flags (a registry mirror, for one).
    """

    def __init__(self, processes: Processes, workdir: Path, agent_args: Sequence[str] = ()) -> None:
        self.processes = processes
        self.agent_args = list(agent_args)
        self.controller_state = workdir / "controller"
        self.agent_state = workdir / "agent"
        self.controller_state.mkdir()
        self.agent_state.mkdir()
        self.hostname = "node-1"
        self.labels = {"zone": "test"}
        # Fixed for the cluster's life, so a restarted process comes back where it was.
        self.controller_ports = {"port": free_port(), "metrics_port": free_port(),
                                 "client_port": free_port(), "peer_port": free_port()}
        self.agent_ports = {"port": free_port(), "metrics_port": free_port()}
        # More environment for every `kran` run (KRAN_CONFIG, for one).
        self.env: dict[str, str] = {}
        self.controller: Controller = self._start_controller()
        self.agent: Agent = self._start_agent()

    def _start_controller(self) -> Controller:
        return self.processes.controller(self.controller_state, node_ttl=NODE_TTL,
                                         **self.controller_ports)

    def _start_agent(self) -> Agent:
        return self.processes.agent(self.agent_state, self.controller.address,
                                    hostname=self.hostname, labels=self.labels,
                                    args=self.agent_args, **self.agent_ports)

    @property
    def address(self) -> str:
        """The controller's gRPC address, host:port."""
        return self.controller.address

    def kran(self, *args: str, stdin: bytes | None = None,
             env: dict[str, str] | None = None) -> Result:
        """Run the installed `kran` against this cluster (through KRAN_HOST)."""
        done = subprocess.run(
            [str(BIN / "kran"), *args], input=stdin if stdin is not None else b"",
            capture_output=True, timeout=KRAN_TIMEOUT,
            env={**os.environ, "KRAN_HOST": self.address, **self.env, **(env or {})},
        )
        result = Result(done.returncode, done.stdout.decode(errors="replace"),
                        done.stderr.decode(errors="replace"), done.stdout)
        # Whatever happened, a user never sees a traceback.
        assert "Traceback" not in result.err, f"kran {' '.join(args)}:\n{result.err}"
        return result

    def ok(self, *args: str, stdin: bytes | None = None) -> str:
        """Run `kran`, require exit status 0 and return its stdout."""
        result = self.kran(*args, stdin=stdin)
        assert result.code == 0, f"kran {' '.join(args)} exited {result.code}:\n{result.err}"
        return result.out

    def terminal(self, *args: str) -> Terminal:
        """Start the installed `kran` on a pseudo-terminal (see Terminal); close() it afterwards."""
        return Terminal([str(BIN / "kran"), *args],
                        {**os.environ, "KRAN_HOST": self.address, **self.env, "TERM": "xterm"})

    def table(self, *args: str) -> tuple[list[str], list[dict[str, str]]]:
        """Run `kran`, require success and split its table into header and rows."""
        return table(self.ok(*args))

    def nodes(self) -> list[dict[str, str]]:
        """`kran node ls` as rows."""
        return self.table("node", "ls")[1]

    def wait_status(self, status: str, timeout: float = 30.0) -> dict[str, str]:
        """Wait until the node shows status (Ready or Down); its `node ls` row."""
        def row() -> dict[str, str] | None:
            rows = [r for r in self.nodes() if r.get("HOSTNAME") == self.hostname]
            return rows[0] if rows and rows[0].get("STATUS") == status else None
        return wait_until(row, timeout, interval=0.3, what=f"node {self.hostname} {status}")

    def start_agent(self) -> None:
        """Start the agent again on its state directory and ports."""
        self.agent = self._start_agent()

    def restart_controller(self) -> None:
        """SIGTERM the controller and start it again on the same state and ports."""
        status = self.controller.stop()
        assert status == 0, f"kran-controller exited {status}:\n{self.controller.output()}"
        self.controller = self._start_controller()


@contextmanager
def running_cluster(workdir: Path, agent_args: Sequence[str] = ()) -> Iterator[Cluster]:
    """A one-node cluster under workdir with the node Ready; everything stopped afterwards."""
    processes = Processes(workdir)
    try:
        cluster = Cluster(processes, workdir, agent_args)
        cluster.wait_status("Ready")
        yield cluster
    finally:
        processes.cleanup()
        left = unmount_leftovers(workdir)
        assert not left, f"mounts left behind under {workdir}: {left}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A one-node cluster for one test module, with the node Ready."""
    with running_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def names(cluster: Cluster, images: None) -> Iterator[list[str]]:
    """Container names a test uses; each is removed (rm -f) at the end.

    `images` is the test module's own fixture: what the names' containers run.
    """
    used: list[str] = []
    yield used
    if used:
        cluster.kran("rm", "-f", *used)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Debian's docker-registry on a free loopback port, storage in a temporary directory.

    `registry.mirror_args` are the agent flags that make it the docker.io
    mirror; start_registry(..., users=...) gives one with htpasswd.
    """
    workdir = tmp_path_factory.mktemp("registry")
    processes = Processes(workdir)
    try:
        yield start_registry(processes, workdir)
    finally:
        processes.cleanup()


@pytest.fixture(scope="session")
def images_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The busybox and hello-world rootfs tarballs that deploy/images builds.

    `make test` has built them into out/images (KRAN_IMAGES_DIR); run alone,
    pytest builds them with the same script into a temporary directory.
    """
    given = os.environ.get("KRAN_IMAGES_DIR")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("images")
    subprocess.run([str(ROOT / "deploy/images/build.sh"), str(out)], check=True,
                   capture_output=True)
    return out


@pytest.fixture(scope="session")
def busybox_tar(images_dir: Path) -> Path:
    """Debian's static busybox with its applets, as a rootfs tarball."""
    path = images_dir / "busybox.tar"
    assert path.is_file(), f"{path} was not built"
    return path


@pytest.fixture(scope="session")
def hello_tar(images_dir: Path) -> Path:
    """The static /hello program, as a rootfs tarball."""
    path = images_dir / "hello-world.tar"
    assert path.is_file(), f"{path} was not built"
    return path


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Iterator[AgentUnderTest]:
    workdir = tmp_path_factory.mktemp("agent-containers")
    processes = Processes(workdir)
    parent = f"kran-test-agent-{os.getpid()}"
    try:
        controller = processes.controller(workdir / "controller")
        under_test = AgentUnderTest(processes, workdir / "agent", controller.address, parent)
        header = images_pb2.ImportImageRequest(header=images_pb2.ImportHeader(
            reference="busybox:latest", changes=['CMD ["sh"]']))
        chunks = [header, images_pb2.ImportImageRequest(chunk=busybox_tar.read_bytes())]
        under_test.images.Import(iter(chunks), timeout=CALL_TIMEOUT)
        yield under_test
        leftover = under_test.call("List", pb.ListContainersRequest(all=True)).containers
        for container in leftover:
            under_test.call("Remove", pb.RemoveContainerRequest(container=container.id, force=True))
        assert not leftover, f"containers left: {[c.name for c in leftover]}"
    finally:
        processes.cleanup()
        mounts = unmount_leftovers(workdir)
        for path in cgroup_dirs(parent):
            for child in (c for c in path.iterdir() if c.is_dir()):
                kill_cgroup(child)
            path.rmdir()
        assert not mounts, f"mounts left behind: {mounts}"
