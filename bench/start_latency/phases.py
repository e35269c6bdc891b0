"""The bench's phases and what they share: layers, a Runtime, runc's bundle, dockerd, a kran cluster.

Each part is made the first time a phase needs it and torn down in
Bench.__exit__, whatever happened: containers removed, processes stopped
by pid, overlays unmounted, the bench's cgroups removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
from pathlib import Path

from agent import linux
from agent.runtime.forkserver import ForkServer
from agent.runtime.runtime import Runtime
from agent.runtime.state import process_start_time
from bench.start_latency import agent_level, concurrency
from bench.start_latency.dockerd import DockerDaemon, DockerUnavailable
from bench.start_latency.kran_cluster import KranCluster
from bench.start_latency.memory import children, pss
from bench.start_latency.stats import Summary, latency_table, mib, ratio

E2E_WARMUP = 3


class KranUnavailable(Exception):
    """kran's end-to-end path (kran run) does not work yet; the message says why."""


def machine() -> dict[str, str | int | float]:
    """What the figures were measured on."""
    return {"kernel": platform.release(), "cpus": os.cpu_count() or 0, "python": platform.python_version(),
            "cgroup": "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1 (hybrid)",
            # Other work on the machine skews the figures; the 1-minute load average says how much there was.
            "load_average_at_start": round(os.getloadavg()[0], 2)}


def remove_tree(path: Path) -> None:
    """Unmount whatever is mounted below path, then remove it."""
    for point in linux.mounts_below(path):
        with contextlib.suppress(OSError):
            linux.unmount(point)
    shutil.rmtree(path, ignore_errors=True)


class Bench:
    """The shared parts of one bench run, made on first use and cleaned up on exit."""

    def __init__(self, workdir: Path, forkserver: ForkServer, tarball: Path, docker: bool = True):
        self.workdir = workdir
        self.forkserver = forkserver
        self.tarball = tarball
        self.want_docker = docker
        self.cgroup_parent = f"kran-bench-{os.getpid()}"
        self._layers: list[Path] | None = None
        self._runtime: Runtime | None = None
        self._runc: agent_level.RuncBundle | None = None
        self._docker: DockerDaemon | None = None
        self._docker_error: str | None = None
        self._cluster: KranCluster | None = None
        self._cluster_error: str | None = None

    def __enter__(self) -> "Bench":
        # Shims double-fork away from the forkserver; as subreaper this process reaps them.
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        return self

    def reap(self) -> None:
        """Reap the shims that ended as this (subreaper) process's children; never a process it started."""
        started = {p.pid for p in (self._docker.process if self._docker else None,) if p}
        if self._cluster is not None:
            started |= {proc.pid for proc in self._cluster.processes.started}
        for pid in children(os.getpid()):
            if pid not in started and process_start_time(pid) is None:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)

    def __exit__(self, *exc: object) -> None:
        problems = []
        if self._runtime is not None:
            problems += asyncio.run(agent_level.remove_all(self._runtime))
        if self._runc is not None:
            self._runc.close()
        if self._cluster is not None:
            self._cluster.stop()
        if self._docker is not None:
            self._docker.stop()
        for path in Path("/sys/fs/cgroup").glob(f"*/{self.cgroup_parent}"):
            with contextlib.suppress(OSError):
                path.rmdir()
        self.reap()
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 0)
        for problem in problems:
            print(f"cleanup: {problem}")

    # The shared parts.

    @property
    def layers(self) -> list[Path]:
        if self._layers is None:
            self._layers = agent_level.busybox_layers(self.tarball, self.workdir / "images")
        return self._layers

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime(self.workdir / "runtime", self.forkserver, self.cgroup_parent)
        return self._runtime

    @property
    def runc(self) -> agent_level.RuncBundle:
        if self._runc is None:
            self._runc = agent_level.RuncBundle(self.workdir, self.layers, self.cgroup_parent)
        return self._runc

    def docker(self) -> DockerDaemon | None:
        """The private dockerd with busybox imported; None (reason in docker_error) if it cannot run."""
        if not self.want_docker:
            self._docker_error = "docker was left out (--no-docker)"
        if self._docker is None and self._docker_error is None:
            self._docker = DockerDaemon(self.workdir)
            try:
                self._docker.start()
                self._docker.import_busybox(self.tarball)
            except (DockerUnavailable, RuntimeError) as exc:
                self._docker_error = " ".join(str(exc).split())
                self._docker.stop()
                self._docker = None
        return self._docker

    def cluster(self) -> KranCluster:
        """The private kran cluster, checked with one `kran run --rm busybox true`; KranUnavailable if not."""
        if self._cluster_error is not None:
            raise KranUnavailable(self._cluster_error)
        if self._cluster is None:
            self._cluster = KranCluster(self.workdir)
            try:
                self._cluster.start(self.tarball)
                self._cluster.kran("run", "--rm", "busybox", "true")
            except (RuntimeError, AssertionError, OSError) as exc:
                detail = " ".join(str(exc).split())
                self._cluster_error = f"kran's end-to-end path does not work: {detail}"
                raise KranUnavailable(self._cluster_error) from None
        return self._cluster

    # The phases: each returns its markdown section and its figures.

    def run(self, name: str, args) -> tuple[str, dict]:
        """Run phase `name` with the command line's settings."""
        try:
            if name == "agent":
                return self.agent(args.runs)
            if name == "idle":
                return self.idle(args.idle)
            if name == "e2e":
                return self.e2e(args.e2e_runs)
            return self.concurrent(args.concurrent)
        finally:
            self.reap()

    def agent(self, runs: int) -> tuple[str, dict]:
        result = asyncio.run(agent_level.measure(self.runtime, self.layers, self.runc, runs))
        text = "\n".join([
            "### Agent level: create + start + wait of `true` in busybox", "",
            latency_table([("kran Runtime (create+start+wait)", result.kran),
                           ("kran Runtime (... + delete)", result.kran_with_delete),
                           ("runc run (create+start+wait+delete)", result.runc)]), "",
            f"kran/runc median: **{ratio(result.kran.median, result.runc.median)}** (target <= 0.50x); "
            f"with delete {ratio(result.kran_with_delete.median, result.runc.median)}", ""])
        return text, {"kran": result.kran.as_dict(), "kran_with_delete": result.kran_with_delete.as_dict(),
                      "runc": result.runc.as_dict(),
                      "ratio_median": result.kran.median / result.runc.median}

    def e2e(self, runs: int) -> tuple[str, dict]:
        docker = self.docker()
        cluster = self.cluster()
        kran_argv = cluster.argv("run", "--rm", "busybox", "true")
        kran, theirs = [], []
        for i in range(E2E_WARMUP + runs):
            kran_time = concurrency.timed(kran_argv, cluster.env)
            docker_time = (concurrency.timed(docker.argv("run", "--rm", "--network", "none", "busybox", "true"),
                                             docker.env) if docker else None)
            if i >= E2E_WARMUP:
                kran.append(kran_time)
                if docker_time is not None:
                    theirs.append(docker_time)
        rows = [("kran run --rm busybox true", Summary.of(kran))]
        figures: dict = {"kran": rows[0][1].as_dict()}
        lines = ["### End to end: `run --rm busybox true` through the CLI", ""]
        if theirs:
            rows.append(("docker run --rm busybox true", Summary.of(theirs)))
            figures["docker"] = rows[1][1].as_dict()
            figures["ratio_median"] = rows[0][1].median / rows[1][1].median
        lines.append(latency_table(rows))
        lines.append("")
        if theirs:
            lines.append(f"kran/docker median: **{ratio(rows[0][1].median, rows[1][1].median)}** (target <= 0.60x)")
        else:
            lines.append(f"docker not measured: {self._docker_error}")
        return "\n".join(lines) + "\n", figures

    def idle(self, count: int) -> tuple[str, dict]:
        lines = [f"### Memory: {count} idle `sleep 1000` containers (PSS)", "",
                 "| what | per container | total |", "|---|---|---|"]
        figures: dict = {}
        shim_pss, _ = asyncio.run(agent_level.idle_shims(self.runtime, self.layers, count))
        shared = pss(self.forkserver.pid)
        figures["kran_runtime_shims"] = sum(shim_pss) / count
        figures["kran_forkserver"] = shared
        lines.append(f"| kran shims (Runtime) | {mib(sum(shim_pss) / count)} | {mib(sum(shim_pss))} |")
        lines.append(f"| kran forkserver (one per host) | - | {mib(shared)} |")
        problems = asyncio.run(agent_level.remove_all(self.runtime))
        if problems:
            raise RuntimeError("; ".join(problems))
        try:
            cluster = self.cluster()
        except KranUnavailable as exc:
            lines.append(f"| kran through the agent | not measured: {exc} | |")
        else:
            kran = concurrency.idle(cluster.daemon_pids, cluster.shim_pids, count,
                                    lambda: cluster.kran("run", "-d", "busybox", "sleep", "1000"),
                                    cluster.remove_all)
            figures["kran"] = kran
            lines.append(f"| kran shims (through the agent) | {mib(kran['shims'] / count)} | {mib(kran['shims'])} |")
            lines.append(f"| kran controller+etcd+agent growth | {mib(kran['daemons'] / count)} "
                         f"| {mib(kran['daemons'])} |")
        docker = self.docker()
        if docker is None:
            lines.append(f"| docker | not measured: {self._docker_error} | |")
        else:
            theirs = concurrency.idle(docker.daemon_pids, docker.shim_pids, count,
                                      lambda: docker.docker("run", "-d", "--network", "none", "busybox",
                                                            "sleep", "1000"),
                                      docker.remove_all)
            figures["docker"] = theirs
            lines.append(f"| docker containerd-shims | {mib(theirs['shims'] / count)} | {mib(theirs['shims'])} |")
            lines.append(f"| dockerd+containerd growth | {mib(theirs['daemons'] / count)} "
                         f"| {mib(theirs['daemons'])} |")
            ours = figures.get("kran", {}).get("shims", sum(shim_pss))
            lines += ["", f"kran/docker shim PSS: **{ratio(ours, theirs['shims'])}**"]
        lines.append("")
        return "\n".join(lines), figures

    def concurrent(self, count: int) -> tuple[str, dict]:
        lines = [f"### {count} containers started at once (`run -d busybox sleep 300`)", "",
                 "| what | wall time to start all | to remove all | memory (shims + daemon growth) |",
                 "|---|---|---|---|"]
        figures: dict = {}
        try:
            cluster = self.cluster()
        except KranUnavailable as exc:
            lines.append(f"| kran (SDK, {count} threads) | not measured: {exc} | | |")
        else:
            figures["kran"] = concurrency.burst_kran(cluster, count)
            lines.append(concurrency.burst_row(f"kran (SDK, {count} threads)", figures["kran"], count))
        docker = self.docker()
        if docker is None:
            lines.append(f"| docker | not measured: {self._docker_error} | | |")
        else:
            figures["docker"] = concurrency.burst_docker(docker, count)
            lines.append(concurrency.burst_row(f"docker (docker-py, {count} threads)", figures["docker"], count))
        if "kran" in figures and "docker" in figures:
            lines += ["", f"kran/docker wall time: **{ratio(figures['kran']['start'], figures['docker']['start'])}**,"
                      f" memory: **{ratio(figures['kran']['memory'], figures['docker']['memory'])}**"]
        lines.append("")
        return "\n".join(lines), figures
