"""The seeds' walkthrough, with `kran` in place of `docker`, through the installed CLI.

A real controller and agent (the module's cluster), the busybox and
hello-world images imported as `make up` imports them, and each step checked
against what docker 20.10/28 print and exit with (observed on this machine
against a private dockerd: see bench/start_latency/dockerd.py). Interactive
steps run the CLI on a pseudo-terminal. The last test removes everything and
checks that no mount, cgroup or shim outlives the containers; the agent
puts its containers' cgroups under a parent of its own for that.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.runtime.state import STATE_FILE, process_start_time
from tests.integration.conftest import Cluster, Terminal, columns
from tests.procs import mounts_under

PS_HEADER = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
AGO = r"(Less than a second|About a minute|\d+ (seconds?|minutes?)) ago"
SHORT_ID = re.compile(r"^[0-9a-f]{12}$")
FULL_ID = re.compile(r"^[0-9a-f]{64}$")
DETACH = b"\x10\x11"  # Ctrl-P Ctrl-Q
PROMPT = rb"/ # "


CGROUP_PARENT_ENV = "KRAN_AGENT_CGROUP_PARENT"


def parent_dirs(parent: str) -> list[Path]:
    """The cgroup parent's directories on this host (one per v1 controller, or the v2 one)."""
    root = Path("/sys/fs/cgroup")
    return [p for p in (*root.glob(f"*/{parent}"), root / parent) if p.is_dir()]


def cgroups(parent: str) -> list[Path]:
    """Every cgroup below the parent, deepest first."""
    below = [p for top in parent_dirs(parent) for p in top.rglob("*") if p.is_dir()]
    return sorted(below, key=lambda p: len(p.parts), reverse=True)


def live_shims(state_dir: Path) -> list[tuple[int, str]]:
    """(shim pid, bundle) of the bundles under state_dir whose shim (pid and start time in state.json) lives."""
    alive = []
    for state_file in state_dir.rglob(STATE_FILE):
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        pid = state.get("shim_pid") or 0
        if pid and process_start_time(pid) == state.get("shim_start_time"):
            alive.append((pid, str(state_file.parent)))
    return alive


@pytest.fixture(scope="module")
def kran(cluster: Cluster, busybox_tar: Path, hello_tar: Path) -> Iterator[Cluster]:
    """The cluster with busybox:latest (CMD sh) and hello-world:latest (CMD /hello), as `make up` has them."""
    cluster.ok("import", str(busybox_tar), "busybox:latest", "-c", 'CMD ["sh"]')
    cluster.ok("import", str(hello_tar), "hello-world:latest", "-c", 'CMD ["/hello"]')
    yield cluster
    # Whatever a failed test left: removed through kran, then any surviving shim killed by its pid.
    ids = cluster.kran("ps", "-a", "-q", "--no-trunc").out.split()
    if ids:
        cluster.kran("rm", "-f", *ids)
    for pid, _ in live_shims(cluster.agent_state):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cgroup_parent() -> Iterator[str]:
    """A cgroup parent for this module's agent alone (set before the cluster starts), removed afterwards."""
    parent = f"kran-walk-{os.getpid()}"
    saved = os.environ.get(CGROUP_PARENT_ENV)
    os.environ[CGROUP_PARENT_ENV] = parent
    yield parent
    if saved is None:
        del os.environ[CGROUP_PARENT_ENV]
    else:
        os.environ[CGROUP_PARENT_ENV] = saved
    for path in cgroups(parent) + parent_dirs(parent):
        path.rmdir()


@pytest.fixture(scope="module", autouse=True)
def baseline(cgroup_parent: str, cluster: Cluster) -> dict[str, set]:
    """The agent's mounts before the first container (the last test compares)."""
    return {"mounts": set(mounts_under(cluster.agent_state))}


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    """Terminals a test opens, closed (their command killed by pid) afterwards."""
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def ps_row(kran: Cluster, name: str, *flags: str) -> dict[str, str] | None:
    """The `ps` row (by column position) of the container called name, or None."""
    header, rows = columns(kran.ok("ps", *flags))
    assert header == PS_HEADER
    found = [row for row in rows if row["NAMES"] == name]
    return found[0] if found else None


def test_run_hello_world(kran: Cluster) -> None:
    result = kran.kran("run", "hello-world")
    assert result.code == 0, result.err
    assert "Hello from kran!" in result.out
    assert "This message shows that your installation appears to be working correctly." in result.out


def test_run_busybox_echo(kran: Cluster) -> None:
    result = kran.kran("run", "busybox", "echo", "hello from busybox")
    assert (result.code, result.out, result.err) == (0, "hello from busybox\n", "")


def test_ps_a_lists_exited_containers(kran: Cluster) -> None:
    kran.ok("run", "--name", "walk-exited", "busybox", "true")
    assert ps_row(kran, "walk-exited") is None  # ps alone shows running containers only
    row = ps_row(kran, "walk-exited", "-a")
    assert row is not None
    assert SHORT_ID.match(row["CONTAINER ID"])
    assert (row["IMAGE"], row["COMMAND"], row["PORTS"]) == ("busybox", '"true"', "")
    assert re.fullmatch(AGO, row["CREATED"]), row
    assert re.fullmatch(r"Exited \(0\) " + AGO, row["STATUS"]), row


def test_run_it_shell(kran: Cluster, terminals: list[Terminal]) -> None:
    shell = kran.terminal("run", "-it", "busybox", "sh")
    terminals.append(shell)
    shell.expect(PROMPT)
    shell.send(b"echo hi; hostname\r")
    hostname = shell.expect(rb"\r\nhi\r\n([0-9a-f]{12})\r\n").group(1).decode()
    shell.send(b"exit 3\r")
    assert shell.wait() == 3, shell.output
    # The hostname is the container's short id, and ps shows its exit code.
    rows = [r for r in columns(kran.ok("ps", "-a"))[1] if r["CONTAINER ID"] == hostname]
    assert rows and re.fullmatch(r"Exited \(3\) " + AGO, rows[0]["STATUS"]), rows


def test_create_start_attach_and_detach(kran: Cluster, terminals: list[Terminal]) -> None:
    created = kran.ok("create", "-it", "--name", "walk-attach", "busybox", "sh").strip()
    assert FULL_ID.match(created), created
    assert ps_row(kran, "walk-attach", "-a")["STATUS"] == "Created"
    assert kran.ok("start", "walk-attach") == "walk-attach\n"
    assert re.fullmatch(r"Up " + r"(Less than a second|\d+ seconds?)", ps_row(kran, "walk-attach")["STATUS"])

    attached = kran.terminal("attach", "walk-attach")
    terminals.append(attached)
    attached.send(b"echo attached\r")
    attached.expect(rb"\r\nattached\r\n")
    attached.send(DETACH)
    # docker attach prints "read escape sequence" and exits 1 when detached.
    assert attached.wait() == 1, attached.output
    assert b"read escape sequence" in attached.output
    assert ps_row(kran, "walk-attach")["STATUS"].startswith("Up ")

    # Detaching from `run -it` exits 0 and leaves the container running too.
    shell = kran.terminal("run", "-it", "--name", "walk-detach", "busybox", "sh")
    terminals.append(shell)
    shell.expect(PROMPT)
    shell.send(DETACH)
    assert shell.wait() == 0, shell.output
    assert ps_row(kran, "walk-detach")["STATUS"].startswith("Up ")

    # Attached again, the shell is the same one.
    again = kran.terminal("attach", "walk-attach")
    terminals.append(again)
    again.send(b"echo again\r")
    again.expect(rb"\r\nagain\r\n")
    again.send(b"exit 4\r")
    assert again.wait() == 4, again.output
    assert kran.ok("wait", "walk-attach") == "4\n"


def test_rename(kran: Cluster) -> None:
    kran.ok("run", "--name", "walk-old-name", "busybox", "true")
    renamed = kran.kran("rename", "walk-old-name", "walk-new-name")
    assert (renamed.code, renamed.out, renamed.err) == (0, "", "")
    assert ps_row(kran, "walk-old-name", "-a") is None
    assert ps_row(kran, "walk-new-name", "-a") is not None
    assert kran.ok("inspect", "--format", "{{.Name}}", "walk-new-name") == "/walk-new-name\n"


def test_diff_commit_run_rmi(kran: Cluster) -> None:
    kran.ok("run", "--name", "walk-diff", "busybox", "sh", "-c",
            "echo x > /tmp/new; rm /etc/group; mkdir -p /root/d; echo y > /root/d/f")
    # Exactly what docker diff prints for the same change (sorted; /etc/hostname etc. not listed).
    assert kran.ok("diff", "walk-diff") == "C /etc\nD /etc/group\nC /root\nA /root/d\nA /root/d/f\nC /tmp\nA /tmp/new\n"

    image_id = kran.ok("commit", "walk-diff", "walk:v1").strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id), image_id
    assert kran.ok("run", "--rm", "walk:v1", "cat", "/tmp/new", "/root/d/f") == "x\ny\n"
    gone = kran.kran("run", "--rm", "walk:v1", "cat", "/etc/group")
    assert gone.code == 1 and "No such file or directory" in gone.err

    kran.ok("commit", "-m", "walkthrough", "-a", "kran tests", "-c", 'CMD ["cat", "/tmp/new"]', "walk-diff", "walk:v2")
    assert kran.ok("run", "--rm", "walk:v2") == "x\n"
    assert kran.ok("image", "inspect", "--format", "{{.Comment}} / {{.Author}}", "walk:v2") == \
        "walkthrough / kran tests\n"

    removed = kran.ok("rmi", "walk:v1")
    assert removed == f"Untagged: walk:v1\nDeleted: {image_id}\n"
    assert kran.kran("image", "inspect", "walk:v1").code == 1
    kran.ok("rmi", "walk:v2")


def test_rm(kran: Cluster) -> None:
    kran.ok("run", "--name", "walk-rm", "busybox", "true")
    assert kran.ok("rm", "walk-rm") == "walk-rm\n"
    assert ps_row(kran, "walk-rm", "-a") is None
    again = kran.kran("rm", "walk-rm")
    assert again.code == 1 and "No such container: walk-rm" in again.err


def test_rm_every_exited_container(kran: Cluster) -> None:
    kran.ok("run", "--name", "walk-exit-1", "busybox", "true")
    assert kran.kran("run", "--name", "walk-exit-2", "busybox", "false").code == 1
    exited = kran.ok("ps", "-a", "-q", "-f", "status=exited").split()
    assert len(exited) >= 2 and all(SHORT_ID.match(i) for i in exited), exited
    # docker rm $(docker ps -a -q -f status=exited)
    assert kran.ok("rm", *exited).split() == exited
    assert kran.ok("ps", "-a", "-q", "-f", "status=exited") == ""
    assert ps_row(kran, "walk-exit-1", "-a") is None


# Bad input: each a clear error with Docker's exit code, and nothing lost.

def test_unknown_image(kran: Cluster) -> None:
    result = kran.kran("run", "walk-no-such-image")
    assert result.code == 125, result
    assert "Unable to find image 'walk-no-such-image:latest' locally" in result.err


@pytest.mark.parametrize(("command", "code"), [("walk-no-such-command", 127), ("/etc/passwd", 126)])
def test_command_cannot_run(kran: Cluster, command: str, code: int) -> None:
    result = kran.kran("run", "busybox", command)
    assert result.code == code, result
    assert command in result.err


def test_name_in_use(kran: Cluster) -> None:
    first = kran.ok("run", "-d", "--name", "walk-dup", "busybox", "true").strip()
    second = kran.kran("run", "--name", "walk-dup", "busybox", "true")
    assert second.code == 125, second
    assert (f'Conflict. The container name "/walk-dup" is already in use by container "{first}". '
            "You have to remove (or rename) that container to be able to reuse that name.") in second.err


def test_rm_running_needs_force(kran: Cluster) -> None:
    full = kran.ok("run", "-d", "--name", "walk-running", "busybox", "sleep", "300").strip()
    refused = kran.kran("rm", "walk-running")
    assert refused.code == 1, refused
    # moby 28's message (20.10 said "You cannot remove a running container <id>. ...").
    assert ('cannot remove container "/walk-running": container is running: '
            "stop the container before removing or force remove") in refused.err or \
        f"You cannot remove a running container {full}" in refused.err
    assert ps_row(kran, "walk-running")["STATUS"].startswith("Up ")
    assert kran.ok("rm", "-f", "walk-running") == "walk-running\n"
    assert ps_row(kran, "walk-running", "-a") is None


def test_stop_of_a_stopped_container(kran: Cluster) -> None:
    kran.ok("run", "--name", "walk-stopped", "busybox", "true")
    stopped = kran.kran("stop", "walk-stopped")
    assert (stopped.code, stopped.out, stopped.err) == (0, "walk-stopped\n", "")


@pytest.mark.parametrize(("value", "message"), [
    ("abc", "invalid size: 'abc'"),
    ("1k", "Minimum memory limit allowed is 6MB"),
])
def test_invalid_memory(kran: Cluster, value: str, message: str) -> None:
    result = kran.kran("run", "--memory", value, "busybox", "true")
    assert result.code == 125, result
    assert message in result.err


def test_it_without_a_terminal(kran: Cluster) -> None:
    result = kran.kran("run", "-it", "busybox", "true")  # stdin is a pipe here
    assert (result.code, result.err) == (1, "the input device is not a TTY\n")


def test_nothing_left_behind(kran: Cluster, baseline: dict[str, set], cgroup_parent: str) -> None:
    ids = kran.ok("ps", "-a", "-q", "--no-trunc").split()
    if ids:
        assert sorted(kran.ok("rm", "-f", *ids).split()) == sorted(ids)
    assert kran.ok("ps", "-a", "-q") == ""
    assert live_shims(kran.agent_state) == []
    assert cgroups(cgroup_parent) == []
    assert sorted(set(mounts_under(kran.agent_state)) - baseline["mounts"]) == []
