"""What the agent asks the runtime for: one container's spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ContainerSpec:
    """A container to create; limits of 0/None mean unlimited.

    `lowers` are the image's unpacked layer directories, top layer first.
    `user` is Docker's form: "", "name", "uid", "name:group" or "uid:gid",
    resolved against the image's /etc/passwd and /etc/group. `cpu_quota` and
    `cpu_period` are CFS microseconds (--cpus 1.5 -> 150000/100000).
    """

    id: str
    lowers: list[Path]
    args: list[str]
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    user: str = ""
    hostname: str = ""
    tty: bool = False
    open_stdin: bool = False
    memory_limit: int = 0
    cpu_quota: int = 0
    cpu_period: int = 100000
    pids_limit: int = 0
    init: bool = False
    log_path: Path | None = None


@dataclass
class User:
    """A user resolved to numbers, as the OCI config holds it."""

    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"
