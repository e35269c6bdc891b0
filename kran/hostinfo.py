"""What a kran process reports about the host it runs on (Go's names, as images use)."""

from __future__ import annotations

import platform

# Go's names for architectures, which container images and Docker use.
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
           "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def goarch() -> str:
    """This machine's architecture in GOARCH form (amd64, arm64, ...)."""
    machine = platform.machine().lower()
    return _GOARCH.get(machine, machine)


def goos() -> str:
    """This machine's operating system in GOOS form (linux)."""
    return platform.system().lower()
