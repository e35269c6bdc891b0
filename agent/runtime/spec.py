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
    upper_dir: Path | None = None
    work_dir: Path | None = None


@dataclass
class User:
    """A user resolved to numbers, as the OCI config holds it."""

    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


@dataclass
class ExecSpec:
    """A process to run in a running container (docker exec).

    `env` entries override the container's ("NAME" alone removes NAME);
    `user` is Docker's form, resolved against the container's /etc/passwd
    ("" means the container's user); `cwd` "" means the container's working
    directory; `size` is the terminal's (height, width). A detached exec has
    no stdio and its ExecSession ends at once, carrying the pid.
    """

    args: list[str]
    env: list[str] = field(default_factory=list)
    user: str = ""
    cwd: str = ""
    tty: bool = False
    stdin: bool = False
    size: tuple[int, int] | None = None
    detach: bool = False
    privileged: bool = False
