"""`kran version` and `kran info`."""

from __future__ import annotations

import platform
import sys
from typing import Any

import click

import kran
from cli.session import Session, pass_session

# Go's names for machine architectures, which `OS/Arch` shows in docker.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
           "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
# docker version's tabwriter: values start in column 20.
_LABEL_WIDTH = 20


def goarch(machine: str) -> str:
    """An architecture as Go names it ("amd64" for x86_64)."""
    return _GOARCH.get(machine, machine)


def _field(indent: int, label: str, value: Any) -> str:
    cell = " " * indent + label + ":"
    return cell.ljust(max(_LABEL_WIDTH, len(cell) + 1)) + str(value)


def client_version_block() -> str:
    """The Client: block of `kran version`."""
    return "\n".join([
        "Client:",
        _field(1, "Version", kran.__version__),
        _field(1, "API version", kran.API_VERSION),
        _field(1, "Python version", platform.python_version()),
        _field(1, "OS/Arch", f"{sys.platform}/{goarch(platform.machine())}"),
    ]) + "\n"


def server_version_block(version: dict[str, Any]) -> str:
    """The Server: block of `kran version`, from Client.version()."""
    lines = [
        "Server:",
        " kran-controller:",
        _field(2, "Version", version["Version"]),
        _field(2, "API version", version["ApiVersion"]),
        _field(2, "Python version", version["PythonVersion"]),
    ]
    if version.get("GitCommit"):
        lines.append(_field(2, "Git commit", version["GitCommit"]))
    lines.append(_field(2, "OS/Arch", f"{version['Os']}/{goarch(version['Arch'])}"))
    if version.get("KernelVersion"):
        lines.append(_field(2, "Kernel version", version["KernelVersion"]))
    for component in version.get("Components", []):
        if component["Name"] == "etcd":
            lines += [" etcd:", _field(2, "Version", component["Version"] or "unknown")]
    return "\n".join(lines) + "\n"


def info_text(info: dict[str, Any], host: str) -> str:
    """`kran info` output, from Client.info()."""
    etcd = info["Etcd"]
    lines = [
        "Client:",
        f" Version: {kran.__version__}",
        f" Controller: {host}",
        "",
        "Server:",
        f" Containers: {info['Containers']}",
        f"  Running: {info['ContainersRunning']}",
        f"  Paused: {info['ContainersPaused']}",
        f"  Stopped: {info['ContainersStopped']}",
        f" Images: {info['Images']}",
        f" Server Version: {info['ServerVersion']}",
        f" Nodes: {info['Nodes']}",
        f"  Ready: {info['NodesReady']}",
        f"  Down: {info['NodesDown']}",
        f" Controller Address: {info['ControllerAddress']}",
    ]
    if info.get("Leader"):
        lines.append(f" Leader: {info['Leader']}")
    lines.append(f" etcd: {'embedded' if etcd['Embedded'] else 'external'}")
    lines.append(f"  Endpoints: {', '.join(etcd['Endpoints']) or '-'}")
    return "\n".join(lines) + "\n"


@click.command("version")
@pass_session
def version(session: Session) -> None:
    """Show the kran version information."""
    click.echo(client_version_block())
    click.echo(server_version_block(session.client.version()), nl=False)


@click.command("info")
@pass_session
def info(session: Session) -> None:
    """Display system-wide information."""
    click.echo(info_text(session.client.info(), session.client.address), nl=False)

