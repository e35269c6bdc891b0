"""Several clients on the 3-host lab: the name race, one client on every host, two clients
sharing one host's containers, events seen by two clients, and a controller killed under a client.

A "client" here is the installed `kran` with its own KRAN_HOST: client 0 talks to
controller 0 only, client 1 to controller 1, and so on; `kran` (the fixture) knows all three.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import Terminal, columns
from tests.procs import BIN, wait_until

pytestmark = pytest.mark.usefixtures("clean_lab")

CTRL_P_CTRL_Q = b"\x10\x11"


def client_env(lab, index: int) -> dict[str, str]:
    """The environment of a client that knows only controller index."""
    return {**lab.env(), "KRAN_HOST": lab.controller_endpoints[index]}


def client(lab, index: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "kran"), *args], env=client_env(lab, index), capture_output=True,
                          text=True, timeout=60, check=False)


def terminal(lab, index: int, *args: str) -> Terminal:
    return Terminal([str(BIN / "kran"), *args], {**client_env(lab, index), "TERM": "xterm"})


def test_two_clients_racing_for_a_name(lab):
    for round_ in range(5):
        name = f"race-{round_}"
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda i: client(lab, i, "run", "-d", "--name", name, "busybox",
                                                     "sleep", "300"), (0, 1)))
        codes = sorted(r.returncode for r in results)
        assert codes == [0, 125], [(r.returncode, r.stderr) for r in results]
        loser = next(r for r in results if r.returncode == 125)
        assert f'The container name "/{name}" is already in use' in loser.stderr
        winner = next(r for r in results if r.returncode == 0).stdout.strip()
        assert client(lab, 2, "inspect", "-f", "{{.Id}}", name).stdout.strip() == winner


def test_one_client_drives_every_host(lab, kran):
    for host in ("h1", "h2", "h3"):
        done = kran("run", "-d", "--node", host, "--name", f"drive-{host}", "busybox", "sleep", "300")
        assert done.returncode == 0, done.stderr
    listed = kran("ps")
    assert listed.returncode == 0, listed.stderr
    header, rows = columns(listed.stdout)
    assert header[-1] == "NODE"
    assert {row["NAMES"]: row["NODE"] for row in rows} == {
        "drive-h1": "h1", "drive-h2": "h2", "drive-h3": "h3"}
    for host in ("h1", "h2", "h3"):
        done = kran("exec", f"drive-{host}", "echo", f"on {host}")
        assert (done.returncode, done.stdout) == (0, f"on {host}\n"), done.stderr


def test_two_clients_share_one_hosts_containers(lab):
    for index, name in ((0, "share-a"), (1, "share-b")):
        done = client(lab, index, "run", "-dit", "--node", "h2", "--name", name, "busybox", "sh")
        assert done.returncode == 0, done.stderr
    for index in (0, 1):
        names = client(lab, index, "ps", "--format", "{{.Names}} {{.Node}}").stdout.split("\n")
        assert {"share-a h2", "share-b h2"} <= set(names), names
    # Client 0 attaches to client 1's container and client 1 too; what one types both see.
    first, second = terminal(lab, 0, "attach", "share-b"), terminal(lab, 1, "attach", "share-b")
    try:
        time.sleep(1)  # both attached before anything is typed
        first.send(b"echo $((6*7))-from-a\r")
        second.expect(rb"42-from-a")
        first.expect(rb"42-from-a")
        second.send(b"echo $((7*8))-from-b\r")
        first.expect(rb"56-from-b")
        for shell in (first, second):
            shell.send(CTRL_P_CTRL_Q)
            # As docker attach: a detach says "read escape sequence" and exits 1.
            assert shell.wait() == 1
            assert b"read escape sequence" in shell.output
    finally:
        first.close()
        second.close()
    assert client(lab, 1, "inspect", "-f", "{{.State.Status}}", "share-b").stdout.strip() == "running"


def test_events_seen_by_two_clients(lab):
    since = f"{time.time():.9f}"
    watchers = [terminal(lab, i, "events", "--since", since, "--filter", "container=watched")
                for i in (0, 2)]
    try:
        done = client(lab, 1, "run", "--node", "h3", "--name", "watched", "busybox", "true")
        assert done.returncode == 0, done.stderr
        for watcher in watchers:
            watcher.expect(rb"container die \w+ \(exitCode=0, image=busybox, name=watched\)")
            lines = watcher.output.decode().splitlines()
            assert [re.split(r"\s+", line)[2] for line in lines if line.strip()] == [
                "create", "start", "die"]
    finally:
        for watcher in watchers:
            watcher.close()
    node_events = client(lab, 0, "events", "--since", since, "--until", f"{time.time():.3f}",
                         "--filter", "container=watched", "--filter", "node=h3")
    assert len(node_events.stdout.splitlines()) == 3, node_events


def test_the_cli_keeps_working_when_a_controller_dies(lab, kran):
    assert len(lab.controller_endpoints) == 3
    lab.kill_controller(0)
    try:
        started = time.monotonic()
        done = kran("run", "-d", "--name", "survivor", "busybox", "sleep", "300")
        assert done.returncode == 0, done.stderr
        listed = kran("ps", "--format", "{{.Names}}")
        assert listed.returncode == 0 and "survivor" in listed.stdout.split()
        assert time.monotonic() - started < 20
        events = kran("events", "--since", "1m", "--until", "0s", "--filter", "container=survivor")
        assert events.returncode == 0 and " container start " in events.stdout, events
        only_dead = client(lab, 0, "ps")
        assert only_dead.returncode == 1
        assert f"Cannot connect to the kran controller at {lab.controller_endpoints[0]}" in only_dead.stderr
    finally:
        lab.start_controller(0)
    wait_until(lambda: client(lab, 0, "ps").returncode == 0, 30, interval=0.5,
               what="controller 0 serving again")
    assert "survivor" in client(lab, 0, "ps", "--format", "{{.Names}}").stdout.split()


def test_sdk_from_env_fails_over_too(lab):
    from kran.client import Client   # noqa: PLC0415 - the SDK in this process, with the lab's endpoints

    lab.kill_controller(1)
    try:
        environ = {**os.environ, "KRAN_HOST": ",".join(
            [lab.controller_endpoints[1], lab.controller_endpoints[2]])}
        with Client.from_env(environ) as sdk:
            assert {node.name for node in sdk.nodes.list()} == {"h1", "h2", "h3"}
            assert sdk.address == lab.controller_endpoints[2]
    finally:
        lab.start_controller(1)
