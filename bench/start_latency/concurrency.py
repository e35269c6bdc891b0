"""End-to-end measurements against a daemon: one timed CLI run, idle memory, a burst of containers.

The same functions measure kran and docker; what differs is passed in (how
to start a container, where the daemon's and the shims' pids are).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bench.start_latency.dockerd import DockerDaemon
from bench.start_latency.kran_cluster import KranCluster
from bench.start_latency.memory import total_pss
from bench.start_latency.stats import mib

RUN_TIMEOUT = 60.0
SETTLE = 2.0  # seconds for new shims to reach their idle state before their memory is read


def timed(argv: list[str], env: dict[str, str], timeout: float = RUN_TIMEOUT) -> float:
    """The wall time of one command, in seconds; RuntimeError if it fails."""
    started = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env, timeout=timeout)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode().strip()}")
    return elapsed


def idle(daemon_pids: Callable[[], list[int]], shim_pids: Callable[[], list[int]], count: int,
         start_one: Callable[[], object], remove_all: Callable[[], None]) -> dict[str, int]:
    """Start `count` idle containers one by one; PSS of their shims and of the daemons' growth (bytes)."""
    before = total_pss(daemon_pids())
    try:
        for _ in range(count):
            start_one()
        time.sleep(SETTLE)
        shims = shim_pids()
        if len(shims) != count:
            raise RuntimeError(f"{len(shims)} shims for {count} running containers")
        return {"shims": total_pss(shims), "daemons": max(0, total_pss(daemon_pids()) - before),
                "shim_processes": len(shims)}
    finally:
        remove_all()


def _burst(count: int, run_one: Callable[[], object], remove_one: Callable[[object], None],
           daemon_pids: Callable[[], list[int]], shim_pids: Callable[[], list[int]]) -> dict[str, float]:
    before = total_pss(daemon_pids())
    with ThreadPoolExecutor(max_workers=count) as pool:
        started = time.perf_counter()
        containers = list(pool.map(lambda _: run_one(), range(count)))
        start_time = time.perf_counter() - started
        time.sleep(SETTLE)
        shims = shim_pids()
        memory = total_pss(shims) + max(0, total_pss(daemon_pids()) - before)
        started = time.perf_counter()
        list(pool.map(remove_one, containers))
        remove_time = time.perf_counter() - started
    if len(shims) != count:
        raise RuntimeError(f"{len(shims)} shims for {count} containers started")
    return {"start": start_time, "remove": remove_time, "memory": memory}


def burst_kran(cluster: KranCluster, count: int) -> dict[str, float]:
    """`count` threads each run one detached `sleep 300` through the SDK; then remove them all."""
    import kran.client  # noqa: PLC0415 - grpc loads only in the phases that need it

    client = kran.client.Client(cluster.controller.address)
    try:
        return _burst(count, lambda: client.containers.run("busybox", ["sleep", "300"], detach=True),
                      lambda c: c.remove(force=True), cluster.daemon_pids, cluster.shim_pids)
    finally:
        cluster.remove_all()
        client.close()


def burst_docker(docker: DockerDaemon, count: int) -> dict[str, float]:
    """The same with docker-py against the private dockerd (no network: the bench adds none)."""
    import docker as dockerpy  # noqa: PLC0415 - only the bench needs docker-py (a testcontainers dependency)

    client = dockerpy.DockerClient(base_url=docker.host, max_pool_size=count, timeout=300)
    try:
        return _burst(count, lambda: client.containers.run("busybox", ["sleep", "300"], detach=True,
                                                           network_mode="none"),
                      lambda c: c.remove(force=True), docker.daemon_pids, docker.shim_pids)
    finally:
        docker.remove_all()
        client.close()


def burst_row(name: str, figures: dict[str, float], count: int) -> str:
    """One markdown table row of a burst's figures."""
    return (f"| {name} | {figures['start']:.2f} s | {figures['remove']:.2f} s "
            f"| {mib(figures['memory'])} ({mib(figures['memory'] / count)} per container) |")
