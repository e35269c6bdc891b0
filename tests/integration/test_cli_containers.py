"""Container commands of the installed `kran`, against a real controller and agent.

Each test names its containers and removes them (rm -f) when it ends; the
-it tests drive `kran` through a pseudo-terminal, as a user's shell would.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import termios
import time
from pathlib import Path

import pytest

from tests.procs import BIN, wait_until

FULL_ID = re.compile(r"^[0-9a-f]{64}$")
CTRL_P_CTRL_Q = b"\x10\x11"


@pytest.fixture(scope="module")
def images(cluster, busybox_tar, hello_tar):
    """busybox (CMD sh) and hello-world (CMD /hello) in the node's store."""
    cluster.ok("import", str(busybox_tar), "busybox:latest", "-c", 'CMD ["sh"]')
    cluster.ok("import", str(hello_tar), "hello-world:latest", "-c", 'CMD ["/hello"]')


def terminal_run(cluster, args, inputs, timeout=30.0):
    """Run `kran args` on a pty (30x100), feeding inputs (bytes, or a float to pause).

    Returns (everything the terminal showed, exit status).
    """
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child execs at once
        os.environ["KRAN_HOST"] = cluster.address
        os.execv(str(BIN / "kran"), [str(BIN / "kran"), *args])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    shown = b""
    pending = list(inputs)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.3)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                shown += data
            elif pending:
                item = pending.pop(0)
                if isinstance(item, float):
                    time.sleep(item)
                else:
                    os.write(fd, item)
        else:
            os.kill(pid, 9)
            raise AssertionError(f"kran {' '.join(args)} did not end:\n{shown!r}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return shown.decode(errors="replace"), os.waitstatus_to_exitcode(status)


def ps_row(cluster, name):
    """ID and STATUS of the container called name (from `ps -a --format`), or None."""
    out = cluster.ok("ps", "-a", "--filter", f"name={name}", "--format",
                     "{{.Names}}|{{.ID}}|{{.Status}}")
    for line in out.splitlines():
        found, short, status = line.split("|")
        if found == name:
            return {"CONTAINER ID": short, "STATUS": status}
    return None


def test_run_hello_world(cluster, images):
    result = cluster.kran("run", "--rm", "hello-world")
    assert result.code == 0, result.err
    assert "Hello from kran!" in result.out


def test_run_output_streams_and_exit_status(cluster, names):
    names.append("streams")
    result = cluster.kran("run", "--name", "streams", "busybox", "sh", "-c",
                          "echo out; echo err >&2; exit 3")
    assert (result.code, result.out, result.err) == (3, "out\n", "err\n")
    assert ps_row(cluster, "streams")["STATUS"].startswith("Exited (3) ")


def test_run_i_feeds_piped_stdin_and_closes_it_at_its_end(cluster, names):
    names.append("cat-stdin")
    result = cluster.kran("run", "-i", "--name", "cat-stdin", "busybox", "cat",
                          stdin=b"hello\nworld\n")
    assert (result.code, result.out) == (0, "hello\nworld\n"), result.err


def test_run_passes_flags_after_the_image_to_the_command(cluster, images):
    result = cluster.kran("run", "--rm", "-e", "GREETING=hi there", "-w", "/etc", "busybox",
                          "sh", "-c", 'echo "$GREETING" $(pwd) "$@"', "sh", "-l", "x")
    assert (result.code, result.out) == (0, "hi there /etc -l x\n")


def test_run_errors_and_their_exit_statuses(cluster, names):
    missing = cluster.kran("run", "nosuch")
    assert missing.code == 125
    # This cluster has no registry: the pull that follows is refused, never sent to Docker Hub.
    assert missing.err.startswith("Unable to find image 'nosuch:latest' locally\n"
                                  "kran: Error response from daemon: docker.io is not reachable "
                                  "from this node")
    names += ["notfound", "notexec", "taken"]
    assert cluster.kran("run", "--name", "notfound", "busybox", "nosuchcmd").code == 127
    assert cluster.kran("run", "--name", "notexec", "busybox", "/etc/passwd").code == 126
    cluster.ok("create", "--name", "taken", "busybox")
    taken = cluster.kran("run", "--name", "taken", "busybox", "true")
    assert taken.code == 125 and 'The container name "/taken" is already in use' in taken.err
    memory = cluster.kran("run", "-m", "lots", "busybox")
    assert memory.code == 125
    assert """invalid argument "lots" for "-m, --memory" flag: invalid size: 'lots'""" in \
        memory.err


def test_detached_ps_logs_stop_rm(cluster, names):
    names.append("ticker")
    container_id = cluster.ok("run", "-d", "--name", "ticker", "-l", "role=test", "busybox",
                              "sh", "-c", "trap 'exit 0' TERM; while true; do echo tick; "
                                          "sleep 0.2; done").strip()
    assert FULL_ID.match(container_id)
    row = ps_row(cluster, "ticker")
    assert row["CONTAINER ID"] == container_id[:12] and row["STATUS"].startswith("Up ")
    assert container_id[:12] in cluster.ok("ps", "-q", "--filter", "label=role=test").split()
    wait_until(lambda: cluster.ok("logs", "ticker").count("tick") >= 2, 10, what="ticks")
    assert cluster.ok("logs", "--tail", "1", container_id[:8]) == "tick\n"
    stamped = cluster.ok("logs", "-t", "--tail", "1", "ticker")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z tick\n$", stamped)
    refused = cluster.kran("rm", "ticker")
    assert refused.code == 1 and "container is running" in refused.err
    assert cluster.ok("stop", "ticker") == "ticker\n"
    assert cluster.ok("stop", "ticker") == "ticker\n", "stopping a stopped container is fine"
    assert ps_row(cluster, "ticker")["STATUS"].startswith("Exited (0) ")
    assert cluster.ok("wait", "ticker") == "0\n"
    assert cluster.ok("rm", "ticker") == "ticker\n"
    assert ps_row(cluster, "ticker") is None
    assert cluster.kran("rm", "-f", "ticker").code == 0


def test_create_start_attach_rename_inspect(cluster, names):
    names.append("second")
    created = cluster.ok("create", "--name", "first", "busybox", "echo", "from create").strip()
    assert ps_row(cluster, "first")["STATUS"] == "Created"
    assert cluster.ok("rename", "first", "second") == ""
    result = cluster.kran("start", "-a", "second")
    assert (result.code, result.out) == (0, "from create\n")
    doc = json.loads(cluster.ok("inspect", "second"))[0]
    assert doc["Id"] == created and doc["Name"] == "/second"
    assert doc["State"]["Status"] == "exited" and doc["Config"]["Cmd"] == ["echo", "from create"]
    assert cluster.ok("container", "inspect", "-f", "{{.State.ExitCode}} {{.Name}}",
                      "second") == "0 /second\n"
    assert cluster.ok("inspect", "-f", "{{.RepoTags}}", "busybox") == "[busybox:latest]\n"
    missing = cluster.kran("inspect", "nothing-here")
    assert missing.code == 1 and "No such object: nothing-here" in missing.err


def test_diff_commit_and_run_the_new_image(cluster, names):
    names += ["changer", "fromcommit"]
    cluster.ok("run", "--name", "changer", "busybox", "sh", "-c",
               "mkdir /made && echo x > /made/file && rm /bin/vi")
    changes = cluster.ok("diff", "changer").splitlines()
    assert {"A /made", "A /made/file", "C /bin", "D /bin/vi"} <= set(changes)
    image_id = cluster.ok("commit", "-m", "made", "-c", 'CMD ["cat", "/made/file"]', "changer",
                          "committed:v1").strip()
    assert re.match(r"^sha256:[0-9a-f]{64}$", image_id)
    assert cluster.ok("run", "--name", "fromcommit", "committed:v1") == "x\n"
    cluster.ok("rm", "fromcommit")
    names.remove("fromcommit")
    cluster.ok("rmi", "committed:v1")


def test_cp_both_ways(cluster, names, tmp_path: Path):
    names.append("files")
    cluster.ok("create", "--name", "files", "busybox")
    local = tmp_path / "hello.txt"
    local.write_text("hello\n")
    cluster.ok("cp", str(local), "files:/tmp/")
    cluster.ok("cp", str(local), "files:/renamed.txt")
    assert {"A /tmp/hello.txt", "A /renamed.txt"} <= set(cluster.ok("diff", "files").splitlines())
    cluster.ok("cp", "files:/etc/passwd", str(tmp_path / "passwd"))
    assert "root:" in (tmp_path / "passwd").read_text()
    cluster.ok("cp", "files:/tmp", str(tmp_path / "tmpcopy"))
    assert (tmp_path / "tmpcopy" / "hello.txt").read_text() == "hello\n"
    missing = cluster.kran("cp", "files:/nope", str(tmp_path))
    assert missing.code == 1 and "/nope" in missing.err


def test_run_interactive_terminal(cluster, names):
    names.append("shell")
    shown, code = terminal_run(cluster, ["run", "-it", "--name", "shell", "busybox", "sh"],
                               [0.5, b"echo hi-$((40+2))\r", b"stty size\r", b"exit 5\r"])
    assert code == 5, shown
    assert "hi-42" in shown and "30 100" in shown


def test_detach_and_attach_again(cluster, names):
    names.append("detachable")
    shown, code = terminal_run(cluster, ["run", "-it", "--name", "detachable", "busybox", "sh"],
                               [0.5, b"echo before\r", 0.3, CTRL_P_CTRL_Q])
    assert code == 0, shown
    assert ps_row(cluster, "detachable")["STATUS"].startswith("Up ")
    shown, code = terminal_run(cluster, ["attach", "--detach-keys", "ctrl-a", "detachable"],
                               [0.5, b"echo again\r", 0.3, b"\x01"])
    assert (code, "again" in shown, "read escape sequence" in shown) == (1, True, True)
    shown, code = terminal_run(cluster, ["attach", "detachable"], [0.5, b"exit 9\r"])
    assert code == 9, shown
    assert ps_row(cluster, "detachable")["STATUS"].startswith("Exited (9) ")


def test_exec(cluster, names):
    names.append("execd")
    cluster.ok("run", "-d", "--name", "execd", "-e", "FOO=bar", "busybox", "sleep", "60")
    result = cluster.kran("exec", "-e", "X=1", "-w", "/tmp", "execd", "sh", "-c",
                          'echo "$FOO $X $(pwd)"; exit 4')
    assert (result.code, result.out) == (4, "bar 1 /tmp\n")
    assert cluster.kran("exec", "execd", "nosuchcmd").code == 127
    shown, code = terminal_run(cluster, ["exec", "-it", "execd", "sh"],
                               [0.5, b"echo in-exec\r", b"exit 3\r"])
    assert code == 3 and "in-exec" in shown


def test_top_and_stats(cluster, names):
    names.append("busy")
    cluster.ok("run", "-d", "--name", "busy", "--pids-limit", "50", "busybox", "sleep", "60")
    header, rows = cluster.table("top", "busy")
    assert header[:2] == ["UID", "PID"] and any("sleep 60" in r.get("CMD", "") for r in rows)
    header, rows = cluster.table("stats", "--no-stream", "busy")
    assert header == ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                      "BLOCK I/O", "PIDS"]
    assert rows[0]["NAME"] == "busy" and rows[0]["PIDS"] == "1"


def test_container_prune(cluster, names):
    names.append("keeper")
    cluster.ok("run", "--name", "pruned", "busybox", "true")
    cluster.ok("run", "-d", "--name", "keeper", "busybox", "sleep", "60")
    out = cluster.ok("container", "prune", "-f")
    assert out.startswith("Deleted Containers:\n") and "Total reclaimed space:" in out
    assert ps_row(cluster, "pruned") is None and ps_row(cluster, "keeper") is not None


def test_rmi_refuses_an_image_a_container_uses(cluster, names, busybox_tar):
    image_id = cluster.ok("import", str(busybox_tar), "held:1").strip()
    names.append("holder")
    cluster.ok("create", "--name", "holder", "held:1", "true")
    refused = cluster.kran("rmi", "held:1")
    assert refused.code == 1
    assert 'unable to remove repository reference "held:1" (must force) - container' in refused.err
    assert cluster.ok("images", "-q", "held:1").strip() == image_id[7:19]
    cluster.ok("rm", "holder")
    removed = cluster.ok("rmi", "held:1").splitlines()
    assert removed[:2] == ["Untagged: held:1", f"Deleted: {image_id}"]
