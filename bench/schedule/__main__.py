"""`python -m bench.schedule`: placement throughput and latency with hollow nodes.

For each node count (--nodes, default 100 and 1000) the bench starts a real
kran-controller with its embedded etcd and a fleet of hollow nodes
(bench/schedule/hollow.py: real registrations and heartbeats, a fake
runtime), then measures:

  latency, empty    N single `containers.create` calls, one after another:
                    the client's time (schedule + etcd writes + the agent's
                    create) and the scheduler's own time per decision
  throughput        one service of --replicas tasks (default 10,000): tasks
                    placed per second (the scheduler's counter), and the
                    time until every task's container is running
  latency, loaded   the same single creates with those tasks in place

Figures go to stdout as markdown and to --json.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import kran.client
from bench.start_latency.stats import Summary
from tests.procs import Processes, stop_pid, wait_until

ROOT = Path(__file__).resolve().parents[2]
NODE_TTL = 10                 # kran's default; heartbeats every TTL/3
_SAMPLE = re.compile(r'^(kran_\w+?)(?:\{([^}]*)\})? ([0-9.e+-]+)$')


def scrape(port: int) -> dict[str, float]:
    """The controller's metrics as {"name{labels}": value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    out = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            name, labels, value = match.groups()
            out[f"{name}{{{labels}}}" if labels else name] = float(value)
    return out


def placed(metrics: dict[str, float]) -> float:
    """Containers the scheduler has placed so far."""
    return metrics.get('kran_placements_total{outcome="placed"}', 0.0)


def decision(before: dict[str, float], after: dict[str, float]) -> float:
    """Mean seconds per scheduler decision between two scrapes."""
    calls = after["kran_placement_seconds_count"] - before["kran_placement_seconds_count"]
    spent = after["kran_placement_seconds_sum"] - before["kran_placement_seconds_sum"]
    return spent / calls if calls else 0.0


def decision_p99(before: dict[str, float], after: dict[str, float]) -> float:
    """The histogram bucket bound that holds the 99th percentile of decisions between two scrapes."""
    prefix = 'kran_placement_seconds_bucket{le="'
    bounds = sorted((float(key[len(prefix):-2]), after[key] - before.get(key, 0.0))
                    for key in after if key.startswith(prefix) and "+Inf" not in key)
    calls = after["kran_placement_seconds_count"] - before["kran_placement_seconds_count"]
    for bound, count in bounds:
        if calls and count >= 0.99 * calls:
            return bound
    return float("inf")


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, -(-int(fraction * 100) * len(ordered) // 100) - 1)]


def single_creates(client: kran.client.Client, metrics_port: int, count: int) -> dict:
    """count creates one after another: client latency and scheduler time."""
    before = scrape(metrics_port)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        client.containers.create("busybox", ["true"])
        samples.append(time.perf_counter() - started)
    after = scrape(metrics_port)
    summary = Summary.of(samples)
    return {"n": count, "median": summary.median, "p99": percentile(samples, 0.99),
            "max": summary.high, "scheduler_mean": decision(before, after),
            "scheduler_p99_at_most": decision_p99(before, after)}


def service_throughput(client: kran.client.Client, metrics_port: int, replicas: int,
                       timeout: float) -> dict:
    """Create one service of replicas tasks; time to place them all and to run them all."""
    base = placed(scrape(metrics_port))
    started = time.perf_counter()
    service = client.services.create("busybox", ["sleep", "1d"], name="bench",
                                     replicas=replicas)
    done_placing = None
    while time.perf_counter() - started < timeout:
        metrics = scrape(metrics_port)
        if done_placing is None and placed(metrics) - base >= replicas:
            done_placing = time.perf_counter() - started
        if done_placing is not None:
            service.reload()
            if service.message.running_tasks >= replicas:
                break
        time.sleep(0.05 if done_placing is None else 2.0)
    else:
        raise RuntimeError(f"the service did not reach {replicas} running tasks in {timeout} s")
    running = time.perf_counter() - started
    return {"replicas": replicas, "placed_seconds": done_placing,
            "placements_per_second": replicas / done_placing, "running_seconds": running}


def run_size(nodes: int, replicas: int, samples: int, workdir: Path) -> dict:
    """All phases for one node count, on a fresh controller and fleet."""
    processes = Processes(workdir)
    fleet = None
    try:
        controller = processes.controller(workdir / "controller", node_ttl=NODE_TTL)
        fleet = subprocess.Popen(
            [sys.executable, "-m", "bench.schedule.hollow", "--controller", controller.address,
             "--nodes", str(nodes)], cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=open(workdir / "hollow.log", "wb"))
        client = kran.client.Client(controller.address)
        wait_until(lambda: sum(1 for n in client.nodes.list() if n.state == "ready") >= nodes,
                   timeout=120, interval=1, what=f"{nodes} hollow nodes to be Ready")
        result = {"nodes": nodes,
                  "latency_empty": single_creates(client, controller.metrics_port, samples),
                  "throughput": service_throughput(client, controller.metrics_port, replicas,
                                                   timeout=600),
                  "latency_loaded": single_creates(client, controller.metrics_port, samples)}
        client.close()
        return result
    finally:
        if fleet is not None:
            stop_pid(fleet.pid)
            fleet.wait()
        processes.cleanup()


def report(results: list[dict]) -> str:
    """The markdown table of every node count."""
    lines = ["| nodes | tasks | placements/s | all placed | all running | create p50 / p99 (empty) "
             "| create p50 / p99 (loaded) | scheduler per decision, mean (empty / loaded) "
             "| scheduler p99 (empty / loaded) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        t, e, lo = r["throughput"], r["latency_empty"], r["latency_loaded"]
        lines.append(
            f"| {r['nodes']} | {t['replicas']} | {t['placements_per_second']:.0f} "
            f"| {t['placed_seconds']:.2f} s | {t['running_seconds']:.1f} s "
            f"| {e['median'] * 1000:.1f} / {e['p99'] * 1000:.1f} ms "
            f"| {lo['median'] * 1000:.1f} / {lo['p99'] * 1000:.1f} ms "
            f"| {e['scheduler_mean'] * 1000:.2f} / {lo['scheduler_mean'] * 1000:.2f} ms "
            f"| <= {e['scheduler_p99_at_most'] * 1000:g} / <= {lo['scheduler_p99_at_most'] * 1000:g} ms |")
    return "\n".join(lines)


def main() -> None:
    """Run the bench and print the report."""
    parser = argparse.ArgumentParser(prog="python -m bench.schedule", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default="100,1000", help="node counts (default %(default)s)")
    parser.add_argument("--replicas", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200, help="single creates per phase")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    results = []
    for count in (int(n) for n in args.nodes.split(",")):
        with tempfile.TemporaryDirectory(prefix="kran-bench-schedule-") as tmp:
            results.append(run_size(count, args.replicas, args.samples, Path(tmp)))
        print(report(results[-1:]), flush=True)
    print()
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
