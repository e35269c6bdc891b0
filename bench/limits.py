"""What every bench checks before it starts, and the time limit it runs under."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


class TimeUp(Exception):
    """The bench's time limit was reached."""


def busybox_tarball(images_dir: Path, why_root: str) -> Path | None:
    """The busybox rootfs tarball of `make images`; None (said on stderr) if the bench cannot run."""
    if os.geteuid() != 0:
        print(f"the bench must run as root ({why_root})", file=sys.stderr)
        return None
    tarball = images_dir / "busybox.tar"
    if not tarball.is_file():
        print(f"{tarball} is missing: run `make images` first", file=sys.stderr)
        return None
    return tarball


def start_time_limit(seconds: int) -> None:
    """Raise TimeUp in the main thread once seconds have passed (signal.alarm(0) disarms it)."""
    def time_up(signum: int, frame: object) -> None:
        raise TimeUp(f"the time limit of {seconds}s was reached")

    signal.signal(signal.SIGALRM, time_up)
    signal.alarm(seconds)
