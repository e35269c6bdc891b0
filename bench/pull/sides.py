"""The two engines the bench drives the same way: kran (its CLI) and docker (its CLI).

Each side can empty its image store, load an archive, tag, and time a pull
or a push of one reference through its installed command-line tool, the
way a user runs it. The processes behind them (a private kran cluster, a
private dockerd) are started and stopped by the bench.
"""

from __future__ import annotations

import os
import subprocess
from abc import ABC, abstractmethod

from bench.start_latency.concurrency import timed
from bench.start_latency.dockerd import DockerDaemon
from bench.start_latency.kran_cluster import KranCluster

TRANSFER_TIMEOUT = 900.0


class _CliSide(ABC):
    """What both sides do the same way through their CLI: run, argv and env differ."""

    name = ""

    @abstractmethod
    def run(self, *args: str, timeout: float = 120.0) -> str:
        """The CLI's output for args; RuntimeError if it fails."""

    @abstractmethod
    def argv(self, *args: str) -> list[str]:
        """The command line of the CLI with args."""

    @abstractmethod
    def env(self) -> dict[str, str]:
        """The CLI's environment."""

    def images(self) -> list[str]:
        """The ids of every image in the store."""
        return self.run("images", "-a", "-q", "--no-trunc").split()

    def empty(self) -> None:
        """Remove every image, then whatever is left; RuntimeError if any image stays."""
        ids = sorted(set(self.images()))
        if ids:
            self.run("rmi", "-f", *ids)
        self.run("image", "prune", "-a", "-f")
        if self.images():
            raise RuntimeError(f"{self.name}'s store is not empty after rmi and prune: "
                               f"{self.images()}")

    def load(self, archive: os.PathLike) -> None:
        """`load -i archive`."""
        self.run("load", "-q", "-i", str(archive), timeout=TRANSFER_TIMEOUT)

    def tag(self, source: str, target: str) -> None:
        """`tag source target`."""
        self.run("tag", source, target)

    def pull(self, ref: str) -> float:
        """Seconds `pull ref` takes."""
        return timed(self.argv("pull", ref), self.env(), TRANSFER_TIMEOUT)

    def push(self, ref: str) -> float:
        """Seconds `push ref` takes."""
        return timed(self.argv("push", ref), self.env(), TRANSFER_TIMEOUT)


class KranSide(_CliSide):
    """kran through its CLI, against a private controller + agent."""

    name = "kran"

    def __init__(self, cluster: KranCluster) -> None:
        self.cluster = cluster

    def run(self, *args: str, timeout: float = 120.0) -> str:
        """`kran args...`'s output; RuntimeError if it fails."""
        return self.cluster.kran(*args, timeout=timeout).stdout.decode()

    def argv(self, *args: str) -> list[str]:
        return self.cluster.argv(*args)

    def env(self) -> dict[str, str]:
        return self.cluster.env

    def version(self) -> str:
        """The CLI's version line."""
        return self.run("--version").strip()


class DockerSide(_CliSide):
    """docker through its CLI, against a private dockerd."""

    name = "docker"

    def __init__(self, daemon: DockerDaemon) -> None:
        self.daemon = daemon

    def run(self, *args: str, timeout: float = 120.0) -> str:
        """`docker args...`'s output; RuntimeError if it fails."""
        return self.daemon.docker(*args, timeout=timeout).stdout.decode()

    def argv(self, *args: str) -> list[str]:
        return self.daemon.argv(*args)

    def env(self) -> dict[str, str]:
        return self.daemon.env

    def version(self) -> str:
        """The daemon's version."""
        return f"docker {self.daemon.version()}"


def registry_version() -> str:
    """The version line of Debian's docker-registry."""
    done = subprocess.run(["docker-registry", "--version"], capture_output=True, text=True, timeout=30)
    return " ".join(done.stdout.split()[1:]) or "unknown"
