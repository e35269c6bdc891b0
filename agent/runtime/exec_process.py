"""An exec's process as the shim receives it: the container's config merged with an ExecSpec.

Docker's rules: the container's environment with the exec's on top (an
entry without "=" removes the variable), TERM=xterm with a terminal, HOME
from the exec's user unless the container set HOME itself; the container's
user and working directory unless the exec names its own; Docker's default
capabilities (every capability the kernel knows when privileged) and the
container's no_new_privs.
"""

from __future__ import annotations

import os
import stat

from agent import linux
from agent.runtime import oci
from agent.runtime.spec import ExecSpec, User
from agent.runtime.users import resolve_user
from kran import errors


def validate(spec: ExecSpec) -> None:
    """InvalidArgument for an exec that cannot run."""
    if not spec.args or not spec.args[0]:
        raise errors.InvalidArgument("No exec command specified")
    if spec.cwd and not spec.cwd.startswith("/"):
        raise errors.InvalidArgument(
            f"the working directory '{spec.cwd}' is invalid, it needs to be an absolute path")
    if any("\0" in value for value in [*spec.args, *spec.env, spec.user, spec.cwd]):
        raise errors.InvalidArgument("arguments and environment cannot contain NUL bytes")
    if spec.size is not None and not all(0 <= n < 1 << 16 for n in spec.size):
        raise errors.InvalidArgument("terminal size out of range")


def merge_env(base: list[str], override: list[str]) -> list[str]:
    """Docker's ReplaceOrAppendEnvValues: override by name, then drop entries without "="."""
    merged = list(base)
    index = {entry.partition("=")[0]: i for i, entry in enumerate(merged)}
    for entry in override:
        name = entry.partition("=")[0]
        if name in index:
            merged[index[name]] = entry
        else:
            index[name] = len(merged)
            merged.append(entry)
    return [entry for entry in merged if "=" in entry]


def build_process(config: dict, spec: ExecSpec, user: User | None, last_cap: int) -> dict:
    """The process dict (OCI's shape) for the shim; user None means the container's."""
    container_process = config["process"]
    env = list(container_process.get("env", []))
    if user is None:
        user_json = container_process.get("user", {})
    else:
        user_json = {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids}
        if config.get("annotations", {}).get(oci.ANNOTATION_DEFAULT_HOME) == "true":
            env = merge_env(env, [f"HOME={user.home}"])
    env = merge_env(env, spec.env)
    if spec.tty and not any(entry.startswith("TERM=") for entry in env):
        env.append("TERM=xterm")
    if spec.privileged:
        names = list(oci.CAPABILITY_NAMES[:last_cap + 1])
        caps = {"bounding": names, "effective": names, "permitted": names}
    else:
        caps = container_process.get("capabilities", {})
    return {
        "terminal": spec.tty,
        "user": user_json,
        "args": list(spec.args),
        "env": env,
        "cwd": spec.cwd or container_process.get("cwd") or "/",
        "capabilities": caps,
        "noNewPrivileges": bool(container_process.get("noNewPrivileges")),
    }


def read_container_file(init_pid: int, relpath: str) -> str:
    """A small text file as the running container sees it ("" when absent).

    Opened through the init's root with openat2(RESOLVE_IN_ROOT), so the
    container's symlinks cannot lead to the host's files.
    """
    root = os.open(f"/proc/{init_pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = linux.open_in_root(root, relpath, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return ""
    finally:
        os.close(root)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return ""
        return f.read(1 << 20).decode(errors="replace")


def resolve_exec_user(user: str, init_pid: int) -> User | None:
    """The exec's user against the container's /etc/passwd and /etc/group; None for the container's."""
    if not user:
        return None
    return resolve_user(user, read_container_file(init_pid, "etc/passwd"),
                        read_container_file(init_pid, "etc/group"))
