"""`python -m bench.build`: kran build against docker build (classic builder), cold and warm.

What it starts, all under one temporary directory and stopped by pid: a
private kran controller + agent and a private dockerd (no network changes,
a dead proxy: it can never pull). Both have busybox:latest from the same
rootfs tarball (`kran import` / `docker import`, CMD sh). The build context
(bench/build/project.py) is a multi-stage Dockerfile of 12 steps (RUN,
COPY, COPY --from, ENV, WORKDIR, CMD) and a few files.

  cold  the image and every cache are removed first (kran: rmi + builder
        prune -a; docker: rmi + image prune, which removes the classic
        builder's intermediate images), then the build is timed;
  warm  the same build again, context unchanged: every step comes from
        the cache; each side must print "Using cache" for every step.
Sides alternate which goes first; each command is the installed CLI,
timed from its start to its exit. `docker build` runs with
DOCKER_BUILDKIT=0 (the classic builder) and --network none (a kran RUN has
no network). For kran the same warm build is also timed through the SDK
in one process, and the CLI's own start (`kran --version`, and `kran
images`, which makes one call) on its own, to show where the time goes. Figures are printed as markdown and saved
as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.limits import TimeUp, busybox_tarball, start_time_limit
from bench.build.project import STEPS, write_project
from bench.start_latency.dockerd import DockerDaemon, DockerUnavailable
from bench.start_latency.kran_cluster import KranCluster
from bench.start_latency.phases import machine, remove_tree
from bench.start_latency.stats import Summary, latency_table, ratio

ROOT = Path(__file__).resolve().parents[2]
TAG = "bench-build:latest"
TARGET = 0.5  # warm rebuild: at most this fraction of docker's



def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.build", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20, help="measured warm builds per side (default 20)")
    p.add_argument("--cold-runs", type=int, default=5, help="measured cold builds per side (default 5)")
    p.add_argument("--images-dir", type=Path, default=ROOT / "out/images",
                   help="where busybox.tar was built (make images)")
    p.add_argument("--no-docker", action="store_true", help="measure kran only")
    p.add_argument("--time-limit", type=int, default=1800, help="seconds for the whole run (default 1800)")
    p.add_argument("--results", type=Path, default=ROOT / "out/bench/build.json",
                   help="where to write the figures as JSON")
    args = p.parse_args(argv)
    if args.runs < 1 or args.cold_runs < 1:
        p.error("--runs and --cold-runs must be at least 1")
    return args


def timed(argv: list[str], env: dict[str, str], check_output: Callable[[str], None]) -> float:
    """Seconds one command takes; RuntimeError with its output when it fails or prints the wrong thing."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env, stdin=subprocess.DEVNULL, timeout=600)
    elapsed = time.perf_counter() - started
    out = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    check_output(out)
    return elapsed


def cold(out: str) -> None:
    if "Using cache" in out:
        raise RuntimeError(f"a cold build used the cache:\n{out}")


def warm(out: str) -> None:
    if out.count(" ---> Using cache") != STEPS - 2:  # every step but the two FROMs
        raise RuntimeError(f"a warm build ran steps:\n{out}")


class BuildBench:
    """Both sides, the project and the timed runs; close() stops everything."""

    def __init__(self, workdir: Path, tarball: Path, docker: bool) -> None:
        self.workdir = workdir
        self.project = write_project(workdir / "project")
        self.kran = KranCluster(workdir)
        self.kran.start(tarball)
        # A CLI started as a user starts it: with the bytecode Python caches, not without.
        self.kran_env = {k: v for k, v in self.kran.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.docker: DockerDaemon | None = None
        if docker:
            self.docker = DockerDaemon(workdir)
            self.docker.start()
            self.docker.import_busybox(tarball)
            self.docker_env = {**self.docker.env, "DOCKER_BUILDKIT": "0"}

    def close(self) -> None:
        if self.docker is not None:
            self.docker.stop()
        self.kran.stop()

    def kran_build(self, check: Callable[[str], None]) -> float:
        return timed(self.kran.argv("build", "-t", TAG, str(self.project)), self.kran_env, check)

    def docker_build(self, check: Callable[[str], None]) -> float:
        assert self.docker is not None
        return timed(self.docker.argv("build", "--network", "none", "-t", TAG, str(self.project)),
                     self.docker_env, check)

    def kran_forget(self) -> None:
        self.kran.kran("rmi", "-f", TAG, check=False)
        self.kran.kran("builder", "prune", "-a", "-f")

    def docker_forget(self) -> None:
        assert self.docker is not None
        self.docker.docker("rmi", "-f", TAG, check=False)
        self.docker.docker("image", "prune", "-f")

    def sides(self, run: int) -> list[str]:
        order = ["kran", "docker"] if self.docker is not None else ["kran"]
        return order if run % 2 == 0 else order[::-1]

    def measure(self, args: argparse.Namespace) -> dict[str, list[float]]:
        samples: dict[str, list[float]] = {"kran cold": [], "docker cold": [], "kran warm": [], "docker warm": []}
        for run in range(args.cold_runs):
            for side in self.sides(run):
                if side == "kran":
                    self.kran_forget()
                    samples["kran cold"].append(self.kran_build(cold))
                else:
                    self.docker_forget()
                    samples["docker cold"].append(self.docker_build(cold))
        for side in self.sides(0):  # after the last cold build, one warm-up each
            (self.kran_build if side == "kran" else self.docker_build)(warm)
        for run in range(args.runs):
            for side in self.sides(run):
                build = self.kran_build if side == "kran" else self.docker_build
                samples[f"{side} warm"].append(build(warm))
        samples["kran warm, SDK in one process"] = self.sdk_warm(args.runs)
        samples["kran --version (CLI start alone)"] = [
            timed(self.kran.argv("--version"), self.kran_env, lambda _out: None) for _ in range(args.runs)]
        samples["kran images (CLI start, one call)"] = [
            timed(self.kran.argv("images"), self.kran_env, lambda _out: None) for _ in range(args.runs)]
        return {name: values for name, values in samples.items() if values}

    def sdk_warm(self, runs: int) -> list[float]:
        from kran.client import Client  # noqa: PLC0415 - grpc only once the forkserver-free bench needs it

        client = Client(self.kran.controller.address)
        try:
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                out = "".join(line.get("stream", "") for line in client.images.build_stream(
                    path=str(self.project), tag=TAG))
                times.append(time.perf_counter() - started)
                warm(out)
            return times
        finally:
            client.close()


def report(summaries: dict[str, Summary], docker: bool) -> str:
    lines = ["### Figures", "", latency_table(list(summaries.items())), ""]
    if docker:
        for kind in ("cold", "warm"):
            kran, theirs = summaries[f"kran {kind}"], summaries[f"docker {kind}"]
            lines.append(f"- {kind}: kran/docker median = {ratio(kran.median, theirs.median)}")
        warm_ratio = summaries["kran warm"].median / summaries["docker warm"].median
        verdict = "meets" if warm_ratio <= TARGET else "misses"
        lines.append(f"- warm rebuild target <= {TARGET}x docker's: {verdict} it ({warm_ratio:.2f}x)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the bench; 0 when it completed."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    tarball = busybox_tarball(args.images_dir, "kran's agent and dockerd mount overlays")
    if tarball is None:
        return 1
    start_time_limit(args.time_limit)
    workdir = Path(tempfile.mkdtemp(prefix="kran-bench-build-"))
    results: dict = {"machine": machine(), "steps": STEPS}
    bench = None
    try:
        bench = BuildBench(workdir, tarball, docker=not args.no_docker)
        if bench.docker is not None:
            results["docker"] = bench.docker.version()
        samples = bench.measure(args)
        summaries = {name: Summary.of(values) for name, values in samples.items()}
        results["figures"] = {name: s.as_dict() for name, s in summaries.items()}
        print(report(summaries, bench.docker is not None))
        status = 0
    except (TimeUp, DockerUnavailable, RuntimeError) as exc:
        traceback.print_exc()
        results["error"] = str(exc)
        status = 1
    finally:
        signal.alarm(0)
        if bench is not None:
            bench.close()
        remove_tree(workdir)
    results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1))
    print(f"figures saved in {args.results}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
