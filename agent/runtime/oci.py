"""The bundle's config.json: an OCI runtime spec for a ContainerSpec.

The shim and the container's init read everything they do from this file,
so an OCI runtime (runc) can run the same bundle. What OCI has no field for
(the overlay's layers, the log file, --init, -i) rides in annotations.
Defaults follow Docker's: capabilities, mounts, masked and read-only paths.
"""

from __future__ import annotations

from pathlib import Path

from agent.runtime.spec import ContainerSpec, User

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ANNOTATION_LOWERS = "io.kran.rootfs.lowers"      # ":"-joined, top first
ANNOTATION_LOG_PATH = "io.kran.log-path"
ANNOTATION_INIT = "io.kran.init"
ANNOTATION_OPEN_STDIN = "io.kran.open-stdin"

# Docker's default capability set, by number (linux/capability.h).
DEFAULT_CAPABILITIES = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
    "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18, "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29,
    "CAP_SETFCAP": 31,
}
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
        mask |= 1 << DEFAULT_CAPABILITIES[name]
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
        },
    }


def overlay_lowers(config: dict) -> list[str]:
    """The image layer dirs of the bundle's rootfs, top first."""
    return config["annotations"][ANNOTATION_LOWERS].split(":")


def write_etc_files(bundle: Path, hostname: str) -> None:
    """Minimal /etc/hostname, /etc/hosts and /etc/resolv.conf for the container."""
    (bundle / "hostname").write_text(f"{hostname}\n")
    (bundle / "hosts").write_text(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"127.0.1.1\t{hostname}\n")
    (bundle / "resolv.conf").write_text("")
