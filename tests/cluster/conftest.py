"""The multi-host lab that tests/cluster run on, and the installed `kran` to drive it.

One lab for the whole session (hosts h1..h3, three controllers, three etcd
members), under a temporary root, with a name and subnet of its own, so that a
`make lab-up` lab, a `make up` cluster or another test session can run beside it. Tests that
break something (a killed agent, a cut link) restore it before they end;
`clean_lab` also heals whatever a failed test left broken.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.lab import Lab
from tests.procs import BIN, wait_until

KRAN_TIMEOUT = 60


def lab_name(prefix: str) -> str:
    """A lab name of this session's own: two pytest sessions on one machine never share a lab."""
    return f"{prefix}{os.getpid()}"


def lab_subnet(second_octet: int) -> str:
    """A subnet of this session's own (a clash is refused by Lab.up, naming who holds it)."""
    return f"10.{second_octet}.{os.getpid() % 256}.0/24"

Kran = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def lab_root() -> Iterator[Path]:
    """A short temporary directory for labs' state (shims' socket paths must stay short)."""
    root = Path(tempfile.mkdtemp(prefix="kran-lab-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def lab(lab_root: Path) -> Iterator[Lab]:
    """The session's lab, up with every host Ready and busybox + hello-world on each; down at the end."""
    lab = Lab(name=lab_name("kc"), hosts=3, controllers=3, root=lab_root, subnet=lab_subnet(214))
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="session")
def kran(lab: Lab) -> Kran:
    """Run the installed `kran` with the lab's KRAN_HOST (every controller); check=False."""
    def run(*args: str, input: str | None = None, timeout: float = KRAN_TIMEOUT
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "kran"), *args], env=lab.env(), input=input, capture_output=True,
                              text=True, timeout=timeout, check=False)
    return run


def node_inspect(kran: Kran, *hosts: str) -> dict[str, dict[str, Any]]:
    """`kran node inspect` of hosts, by hostname."""
    done = kran("node", "inspect", *hosts)
    assert done.returncode == 0, done.stderr
    return {node["Description"]["Hostname"]: node for node in json.loads(done.stdout)}


@pytest.fixture
def clean_lab(lab: Lab, kran: Kran) -> Iterator[Lab]:
    """The lab; afterwards every host is healed and Ready, and every service and container is gone."""
    yield lab
    lab.heal()
    services = kran("service", "ls", "-q")
    if services.returncode == 0 and services.stdout.split():
        removed = kran("service", "rm", *services.stdout.split())
        assert removed.returncode == 0, removed.stderr

    def no_containers() -> bool:
        listed = kran("ps", "-aq")
        assert listed.returncode == 0, listed.stderr
        if not listed.stdout.split():
            return True
        # A service's tasks may still be going away; what is listed now is removed, then listed again.
        kran("rm", "-f", *listed.stdout.split())
        return False
    wait_until(no_containers, 30, interval=0.5, what="every container of the lab to be removed")
