"""The bundle's config.json: an OCI runtime spec for a ContainerSpec.

The shim and the container's init read everything they do from this file,
so an OCI runtime (runc) can run the same bundle. What OCI has no field for
(the overlay's layers, the log file, --init, -i) rides in annotations.
Defaults follow Docker's: capabilities, mounts, masked and read-only paths.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent.runtime.spec import ContainerSpec, User

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ANNOTATION_LOWERS = "io.kran.rootfs.lowers"      # ":"-joined, top first
ANNOTATION_LOG_PATH = "io.kran.log-path"
ANNOTATION_INIT = "io.kran.init"
ANNOTATION_OPEN_STDIN = "io.kran.open-stdin"
ANNOTATION_DEFAULT_HOME = "io.kran.env.default-home"  # "true": HOME is the user's, not the spec's
ANNOTATION_UPPER = "io.kran.rootfs.upper"       # the overlay's upper dir, when not bundle/upper
ANNOTATION_WORK = "io.kran.rootfs.work"

# Every capability, by number (linux/capability.h); a privileged exec gets those the kernel knows.
CAPABILITY_NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
# Docker's default capability set.
DEFAULT_CAPABILITIES = {name: CAPABILITY_NAMES.index(name) for name in (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
    "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE",
    "CAP_SETFCAP")}
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
# Files the bundle holds and the container sees bind-mounted, as Docker does.
ETC_FILES = ("hostname", "hosts", "resolv.conf")


def capability_mask(names: list[str]) -> int:
    """The 64-bit mask for capability names (unknown names are an error)."""
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITY_NAMES.index(name)
    return mask


def container_env(spec: ContainerSpec, user: User, hostname: str) -> list[str]:
    """The spec's env plus what Docker adds when absent: PATH, HOSTNAME, HOME, TERM."""
    env = list(spec.env)
    names = {entry.partition("=")[0] for entry in env}
    defaults = [("PATH", DEFAULT_PATH), ("HOSTNAME", hostname), ("HOME", user.home)]
    if spec.tty:
        defaults.append(("TERM", "xterm"))
    return [f"{k}={v}" for k, v in defaults if k not in names] + env


def _mounts(bundle: Path) -> list[dict]:
    nosuid_noexec_nodev = ["nosuid", "noexec", "nodev"]
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": nosuid_noexec_nodev},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": nosuid_noexec_nodev + ["ro"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": nosuid_noexec_nodev},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": nosuid_noexec_nodev + ["mode=1777", "size=65536k"]},
    ]
    for name in ETC_FILES:
        mounts.append({"destination": f"/etc/{name}", "type": "bind", "source": str(bundle / name),
                       "options": ["rbind", "rprivate"]})
    return mounts


def _resources(spec: ContainerSpec) -> dict:
    resources: dict = {}
    if spec.memory_limit:
        # Docker's default without --memory-swap: as much swap as memory.
        resources["memory"] = {"limit": spec.memory_limit, "swap": 2 * spec.memory_limit}
    if spec.cpu_quota:
        resources["cpu"] = {"quota": spec.cpu_quota, "period": spec.cpu_period}
    if spec.pids_limit:
        resources["pids"] = {"limit": spec.pids_limit}
    return resources


def build_config(spec: ContainerSpec, user: User, bundle: Path, cgroup_parent: str) -> dict:
    """The OCI runtime config for `spec`, with `bundle` as its bundle directory."""
    hostname = spec.hostname or spec.id[:12]
    caps = sorted(DEFAULT_CAPABILITIES, key=DEFAULT_CAPABILITIES.get)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": spec.tty,
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
            "args": list(spec.args),
            "env": container_env(spec, user, hostname),
            "cwd": spec.cwd or "/",
            # Inheritable stays empty, as in Docker since 20.10.14 (CVE-2022-24769).
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": hostname,
        "mounts": _mounts(bundle),
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "resources": _resources(spec),
            "cgroupsPath": f"{cgroup_parent}/{spec.id}",
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
        "annotations": {
            ANNOTATION_LOWERS: ":".join(str(p) for p in spec.lowers),
            ANNOTATION_LOG_PATH: str(spec.log_path or bundle / "container.log"),
            ANNOTATION_INIT: "true" if spec.init else "false",
            ANNOTATION_OPEN_STDIN: "true" if spec.open_stdin else "false",
            ANNOTATION_DEFAULT_HOME: "false" if any(e.partition("=")[0] == "HOME" for e in spec.env) else "true",
            ANNOTATION_UPPER: str(spec.upper_dir or bundle / "upper"),
            ANNOTATION_WORK: str(spec.work_dir or bundle / "work"),
        },
    }


def overlay_lowers(config: dict) -> list[str]:
    """The image layer dirs of the bundle's rootfs, top first."""
    return config["annotations"][ANNOTATION_LOWERS].split(":")


def overlay_dirs(config: dict, bundle: str) -> tuple[str, str]:
    """The rootfs overlay's upper and work dirs (bundle/upper and bundle/work unless the spec chose)."""
    annotations = config.get("annotations", {})
    return (annotations.get(ANNOTATION_UPPER) or os.path.join(bundle, "upper"),
            annotations.get(ANNOTATION_WORK) or os.path.join(bundle, "work"))


def write_etc_files(bundle: Path, hostname: str) -> None:
    """Minimal /etc/hostname, /etc/hosts and /etc/resolv.conf for the container."""
    (bundle / "hostname").write_text(f"{hostname}\n")
    (bundle / "hosts").write_text(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"127.0.1.1\t{hostname}\n")
    (bundle / "resolv.conf").write_text("")
