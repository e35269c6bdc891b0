"""What a lab is made of, and its lab.json: how another process finds the lab's pids, addresses and ports."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from kran import errors
from kran.defaults import AGENT_PORT

STATE_FILE = "lab.json"


@dataclass
class Host:
    """One host of the lab: its namespace, address and agent."""

    name: str           # "h1": the agent's --hostname
    address: str        # eth0's address in the namespace
    netns: str          # the namespace, the root-side veth and the cgroup parent: <lab>-hN
    state_dir: Path
    agent_pid: int = 0

    @property
    def endpoint(self) -> str:
        """The agent's gRPC address."""
        return f"{self.address}:{AGENT_PORT}"


@dataclass
class EtcdMember:
    """One member of the lab's etcd cluster."""

    name: str
    data_dir: Path
    client_port: int = 0
    peer_port: int = 0
    pid: int = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"


@dataclass
class ControllerProcess:
    """One kran-controller of the lab."""

    endpoint: str       # gRPC, on the gateway address
    metrics_addr: str
    state_dir: Path
    pid: int = 0


@dataclass
class LabState:
    """Everything lab.json holds."""

    subnet: str
    node_ttl: int
    hosts: list[Host]
    etcd: list[EtcdMember]
    controllers: list[ControllerProcess]


def write(path: Path, state: LabState) -> None:
    """Write state to path atomically (a reader never sees half a file)."""
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(asdict(state), indent=2, default=str) + "\n")
    os.replace(partial, path)


def read(path: Path) -> LabState | None:
    """The state at path, None if there is no such file."""
    try:
        state = json.loads(path.read_text())
        return LabState(
            state["subnet"], state["node_ttl"],
            [Host(**{**h, "state_dir": Path(h["state_dir"])}) for h in state["hosts"]],
            [EtcdMember(**{**m, "data_dir": Path(m["data_dir"])}) for m in state["etcd"]],
            [ControllerProcess(**{**c, "state_dir": Path(c["state_dir"])}) for c in state["controllers"]])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.FailedPrecondition(f"{path} is damaged ({exc!r}); remove the lab's leftovers by hand") from None
