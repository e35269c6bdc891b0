"""`python -m bench.pull`: pull and push of a ~220 MB image, kran against docker, same registry, same run.

What it starts, all under one temporary directory and stopped by pid:
Debian's docker-registry on a free loopback port (filesystem storage), a
private kran controller + agent, a private dockerd (no network changes, a
dead proxy for everything but 127.0.0.1). The image (bench/pull/image.py)
is made locally, loaded into docker (into kran with --no-docker) and
pushed once to the registry as `bench/pull:latest`.

Then, for each run (sides alternating which goes first):
  pull  the side's store is emptied (rmi of every image, then prune), and
        `kran pull` / `docker pull` of REGISTRY/bench/pull:latest is timed;
  push  the image just pulled is tagged into a new repository of a second,
        new registry and `kran push` / `docker push` of it is timed. The
        push registry is new every run, so neither side can skip a layer
        it pushed before ("Layer already exists", "Mounted from").
Disk writes are flushed (sync) before every timed command. Figures are
printed as markdown and saved as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path

from bench.limits import TimeUp, busybox_tarball, start_time_limit
from bench.pull.image import make_archive
from bench.pull.sides import DockerSide, KranSide, registry_version
from bench.start_latency.dockerd import DockerDaemon, DockerUnavailable
from bench.start_latency.kran_cluster import KranCluster
from bench.start_latency.phases import machine, remove_tree
from bench.start_latency.stats import Summary, ratio
from tests.integration.distkit import RegistryProcess
from tests.procs import Processes

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "bench/pull"
_ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"



def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.pull", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="measured pulls and pushes per side (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="runs per side before the measured ones (default 1)")
    p.add_argument("--images-dir", type=Path, default=ROOT / "out/images",
                   help="where busybox.tar was built (make images)")
    p.add_argument("--no-docker", action="store_true", help="measure kran only")
    p.add_argument("--time-limit", type=int, default=3600, help="seconds for the whole run (default 3600)")
    p.add_argument("--results", type=Path, default=ROOT / "out/bench/pull.json",
                   help="where to write the figures as JSON")
    args = p.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        p.error("--runs must be at least 1 and --warmup at least 0")
    return args


def stored_bytes(host: str, repository: str, tag: str = "latest") -> int:
    """The compressed size of an image in a registry: its config and layer blobs."""
    request = urllib.request.Request(f"http://{host}/v2/{repository}/manifests/{tag}", headers={"Accept": _ACCEPT})
    with urllib.request.urlopen(request, timeout=30) as reply:
        manifest = json.loads(reply.read())
    return manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])


class PullBench:
    """The registry, the sides and the timed runs; close() stops everything it started."""

    def __init__(self, workdir: Path, busybox_tar: Path, docker: bool) -> None:
        self.workdir = workdir
        self.busybox_tar = busybox_tar
        self.processes = Processes(workdir)
        self.registry: RegistryProcess | None = None
        self.cluster: KranCluster | None = None
        self.daemon: DockerDaemon | None = None
        self.sides: list[KranSide | DockerSide] = []
        self.want_docker = docker
        self.docker_error = "docker was left out (--no-docker)" if not docker else ""
        self.image_size = 0
        self.pushes = 0

    def start(self) -> None:
        """Start the registry and both sides; make the image and push it to the registry once."""
        self.registry = RegistryProcess(self.processes, self.workdir / "registry")
        archive, self.image_size = make_archive(self.busybox_tar, self.workdir / "image", "bench-image:latest")
        self.cluster = KranCluster(self.workdir)
        self.cluster.start(self.busybox_tar)
        self.sides.append(KranSide(self.cluster))
        if self.want_docker:
            self.daemon = DockerDaemon(self.workdir, no_proxy="127.0.0.1")
            try:
                self.daemon.start()
            except DockerUnavailable as exc:
                self.docker_error = " ".join(str(exc).split())
                self.daemon.stop()
                self.daemon = None
            else:
                self.sides.append(DockerSide(self.daemon))
        seeder = self.sides[-1]  # docker's own push when there is a docker: what registries usually hold
        seeder.load(archive)
        seeder.tag("bench-image:latest", self.source)
        seeder.push(self.source)
        shutil.rmtree(archive.parent)

    @property
    def source(self) -> str:
        """The reference every pull fetches."""
        assert self.registry is not None
        return f"{self.registry.host}/{SOURCE}:latest"

    def pull(self, side: KranSide | DockerSide) -> float:
        """Empty the side's store, then time its pull of the source image."""
        side.empty()
        os.sync()
        return side.pull(self.source)

    def push(self, side: KranSide | DockerSide) -> tuple[float, int]:
        """Time the side's push of the pulled image to a new repository of a new registry; (seconds, bytes)."""
        self.pushes += 1
        directory = self.workdir / f"push-registry-{self.pushes}"
        target = RegistryProcess(self.processes, directory)
        try:
            repository = f"bench/push-{side.name}-{self.pushes}"
            side.tag(self.source, f"{target.host}/{repository}:latest")
            os.sync()
            seconds = side.push(f"{target.host}/{repository}:latest")
            return seconds, stored_bytes(target.host, repository)
        finally:
            target.proc.stop()
            shutil.rmtree(directory, ignore_errors=True)

    def measure(self, runs: int, warmup: int) -> dict:
        """Alternate the sides' pulls and pushes; every sample, warm-up ones left out."""
        samples: dict = {side.name: {"pull": [], "push": [], "pushed_bytes": 0} for side in self.sides}
        for index in range(warmup + runs):
            order = self.sides if index % 2 == 0 else list(reversed(self.sides))
            for side in order:
                pulled = self.pull(side)
                pushed, size = self.push(side)
                label = "warm-up" if index < warmup else f"run {index - warmup + 1}"
                print(f"{label}: {side.name} pull {pulled:.2f} s, push {pushed:.2f} s", file=sys.stderr, flush=True)
                if index >= warmup:
                    samples[side.name]["pull"].append(pulled)
                    samples[side.name]["push"].append(pushed)
                    samples[side.name]["pushed_bytes"] = size
        return samples

    def versions(self) -> dict[str, str]:
        """What was measured."""
        found = {side.name: side.version() for side in self.sides}
        found["registry"] = registry_version()
        return found

    def close(self) -> None:
        """Stop what was started, by pid, and remove the temporary directory."""
        if self.cluster is not None:
            self.cluster.stop()
        if self.daemon is not None:
            self.daemon.stop()
        self.processes.cleanup()
        remove_tree(self.workdir)


def report(samples: dict, bench: PullBench, versions: dict[str, str]) -> tuple[str, dict]:
    """The markdown section and the JSON figures."""
    assert bench.registry is not None
    pulled = stored_bytes(bench.registry.host, SOURCE)
    lines = [f"### Pull and push of a {bench.image_size / 1e6:.0f} MB image ({pulled / 1e6:.0f} MB compressed)", "",
             "| what | n | median | p90 | min | max | pushed (compressed) |", "|---|---|---|---|---|---|---|"]
    figures: dict = {"image_bytes": bench.image_size, "compressed_bytes": pulled, "versions": versions}
    for name, got in samples.items():
        figures[name] = {}
        for what in ("pull", "push"):
            s = Summary.of(got[what])
            figures[name][what] = s.as_dict()
            size = f"{got['pushed_bytes'] / 1e6:.0f} MB" if what == "push" else ""
            lines.append(f"| {name} {what} | {s.n} | {s.median:.2f} s | {s.p90:.2f} s | {s.low:.2f} s "
                         f"| {s.high:.2f} s | {size} |")
        figures[name]["pushed_bytes"] = got["pushed_bytes"]
    lines.append("")
    if "docker" in samples:
        for what in ("pull", "push"):
            ours, theirs = figures["kran"][what]["median"], figures["docker"][what]["median"]
            figures[f"ratio_{what}"] = ours / theirs
            lines.append(f"kran/docker {what} median: **{ratio(ours, theirs)}** (target <= 0.80x)  ")
    else:
        lines.append(f"docker not measured: {bench.docker_error}")
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" if k == "registry" else v for k, v in versions.items()), ""]
    return "\n".join(lines), figures


def main(argv: list[str] | None = None) -> int:
    """Run the bench; 0 when it measured everything, 1 otherwise."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    tarball = busybox_tarball(args.images_dir, "the agent mounts overlays")
    if tarball is None:
        return 1
    start_time_limit(args.time_limit)
    results: dict = {"machine": machine()}
    bench = PullBench(Path(tempfile.mkdtemp(prefix="kran-bench-pull-")), tarball, docker=not args.no_docker)
    failed = False
    try:
        started = time.monotonic()
        bench.start()
        print(f"set up in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        samples = bench.measure(args.runs, args.warmup)
        text, figures = report(samples, bench, bench.versions())
        results.update(figures)
        print(text, flush=True)
        failed = bench.want_docker and bench.daemon is None
    except TimeUp as exc:
        failed = True
        print(f"stopped: {exc}", file=sys.stderr)
        results["stopped"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - reported, and everything is still cleaned up
        failed = True
        traceback.print_exc()
        results["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        signal.alarm(0)
        bench.close()
    results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    results["machine"]["platform"] = platform.platform()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1))
    print(f"\nfigures saved in {args.results}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
