"""Images move between kran and Docker: kran save -> docker load -> docker save -> kran load.

A private dockerd (bench/start_latency/dockerd.py: no network changes, no
registry) and a throwaway kran cluster on loopback. Exits non-zero unless
the image keeps its id at every step and runs on both sides.
Run with `make compat` (installs docker.io like `make bench`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.start_latency.dockerd import DockerDaemon
from tests.procs import BIN, ROOT, Processes

KRAN = str(BIN / "kran")


def _run(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    print("$", " ".join(args), "->", done.returncode, (done.stdout + done.stderr).strip()[:200])
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}")
    return done.stdout.strip()


def main() -> int:
    """Run the round trip; 0 when the ids match and both sides run the image."""
    work = Path(tempfile.mkdtemp(prefix="kran-docker-roundtrip-"))
    processes, daemon = Processes(work), DockerDaemon(work)
    try:
        daemon.start()
        docker = {**daemon.env, "DOCKER_HOST": daemon.host}
        controller = processes.controller(work / "controller")
        processes.agent(work / "agent", controller.address)
        kran = {**os.environ, "KRAN_HOST": controller.address}
        deadline = time.monotonic() + 30
        while "Ready" not in _run(KRAN, "node", "ls", env=kran) and time.monotonic() < deadline:
            time.sleep(0.3)
        _run(KRAN, "import", str(ROOT / "out/images/busybox.tar"), "busybox:latest", "-c", 'CMD ["sh"]', env=kran)
        kran_id = _run(KRAN, "image", "inspect", "-f", "{{.Id}}", "busybox", env=kran)
        _run(KRAN, "save", "-o", str(work / "kran.tar"), "busybox", env=kran)
        _run("docker", "load", "-i", str(work / "kran.tar"), env=docker)
        docker_id = _run("docker", "image", "inspect", "-f", "{{.Id}}", "busybox", env=docker)
        _run("docker", "run", "--rm", "--network", "none", "busybox", "true", env=docker)
        _run("docker", "tag", "busybox", "roundtrip:1", env=docker)
        _run("docker", "save", "-o", str(work / "docker.tar"), "roundtrip:1", env=docker)
        _run(KRAN, "load", "-i", str(work / "docker.tar"), env=kran)
        back_id = _run(KRAN, "image", "inspect", "-f", "{{.Id}}", "roundtrip:1", env=kran)
        _run(KRAN, "run", "--rm", "roundtrip:1", "true", env=kran)
        print(f"image id: kran {kran_id}, docker {docker_id}, back in kran {back_id}")
        return 0 if kran_id == docker_id == back_id else 1
    finally:
        processes.cleanup()
        daemon.stop()


if __name__ == "__main__":
    sys.exit(main())
