"""Replicated services on the three-host lab: spread, restarts, lost and drained hosts, scaling,
rolling updates that pause and roll back, task history and logs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from deploy.lab import Lab
from kran.client import Client
from kran.defaults import HOST_ENV
from tests.cluster.conftest import Kran
from tests.procs import wait_until

# Fast policies for tests: restart at once, watch new tasks for a moment, stop within a second.
FAST = ("--restart-delay", "0s", "--update-monitor", "500ms", "--rollback-monitor", "500ms",
        "--stop-grace-period", "1s")


@pytest.fixture
def client(clean_lab: Lab) -> Iterator[Client]:
    with Client(clean_lab.env()[HOST_ENV]) as sdk:
        yield sdk


def create(kran: Kran, name: str, *args: str, replicas: int = 3) -> None:
    done = kran("service", "create", "-d", "--name", name, "--replicas", str(replicas), *FAST,
                *args)
    assert done.returncode == 0, done.stderr


def live(client: Client, name: str) -> list[dict[str, Any]]:
    """The service's tasks desired running."""
    return [t for t in client.services.get(name).tasks() if t["DesiredState"] == "running"]


def converged(client: Client, name: str, replicas: int) -> list[dict[str, Any]]:
    """Wait until slots 1..replicas each run exactly one task; those tasks."""
    def check() -> list[dict[str, Any]] | None:
        tasks = live(client, name)
        running = [t for t in tasks if t["Status"]["State"] == "running"]
        if len(tasks) == replicas and sorted(t["Slot"] for t in running) == \
                list(range(1, replicas + 1)):
            return running
        return None
    return wait_until(check, 30, interval=0.2, what=f"{name} to run {replicas} tasks")


def containers(kran: Kran) -> dict[str, str]:
    """Every container's name and node (`kran ps -a`)."""
    done = kran("ps", "-a", "--format", "{{.Names}} {{.Node}}")
    assert done.returncode == 0, done.stderr
    return dict(line.split() for line in done.stdout.splitlines())


def test_replicas_spread_over_the_hosts(clean_lab: Lab, kran: Kran, client: Client) -> None:
    done = kran("service", "create", "--name", "web", "--replicas", "3", *FAST,
                "busybox", "sleep", "600")
    assert done.returncode == 0, done.stderr
    assert "overall progress: 3 out of 3 tasks" in done.stdout
    assert done.stdout.rstrip().endswith("verify: Service converged")
    running = converged(client, "web", 3)
    assert sorted(t["NodeName"] for t in running) == ["h1", "h2", "h3"]
    listed = kran("service", "ls")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split()[1:5] == ["web", "replicated", "3/3",
                                                          "busybox:latest"]
    names = containers(kran)
    for task in running:
        assert names[f"web.{task['Slot']}.{task['ID']}"] == task["NodeName"]


def test_service_errors(clean_lab: Lab, kran: Kran) -> None:
    create(kran, "web", "busybox", "sleep", "600", replicas=1)
    again = kran("service", "create", "-d", "--name", "web", "busybox")
    assert again.returncode == 1
    assert again.stderr.strip() == "Error response from daemon: service with name web already exists"
    missing = kran("service", "inspect", "nope")
    assert missing.returncode == 1 and "service nope not found" in missing.stderr
    bad = kran("service", "create", "-d", "--constraint", "node.zone==a", "busybox")
    assert bad.returncode == 1 and "unknown key 'node.zone'" in bad.stderr
    named = kran("service", "create", "-d", "--name", "no_underscores", "busybox")
    assert named.returncode == 1 and "DNS name component" in named.stderr
    replicas = kran("service", "create", "-d", "--replicas", "three", "busybox")
    assert replicas.returncode == 125 and 'invalid argument "three" for "--replicas"' in replicas.stderr


def test_a_killed_task_is_replaced(clean_lab: Lab, kran: Kran, client: Client) -> None:
    create(kran, "web", "busybox", "sleep", "600", replicas=2)
    first = {t["Slot"]: t for t in converged(client, "web", 2)}
    victim = first[1]
    killed = kran("kill", f"web.1.{victim['ID']}")
    assert killed.returncode == 0, killed.stderr
    wait_until(lambda: {t["Slot"]: t for t in converged(client, "web", 2)}[1]["ID"] != victim["ID"],
               20, interval=0.2, what="slot 1 to get a new task")
    now = {t["Slot"]: t for t in converged(client, "web", 2)}
    assert now[2]["ID"] == first[2]["ID"]
    # The ended task reserves nothing: the replacement spreads as the first task did.
    assert now[1]["NodeName"] != now[2]["NodeName"]
    history = kran("service", "ps", "web")
    assert history.returncode == 0, history.stderr
    failed = [line for line in history.stdout.splitlines() if victim["ID"][:12] in line][0]
    assert "\\_ web.1" in failed and "Shutdown" in failed and "Failed" in failed
    assert '"task: non-zero exit (137)"' in failed


def test_a_lost_host_tasks_run_elsewhere_within_twice_the_ttl(clean_lab: Lab, kran: Kran,
                                                                client: Client) -> None:
    create(kran, "web", "busybox", "sleep", "600", replicas=3)
    before = converged(client, "web", 3)
    lost = [t for t in before if t["NodeName"] == "h3"]
    assert lost
    started = time.monotonic()
    clean_lab.kill_agent("h3")
    try:
        after = wait_until(lambda: (lambda tasks: tasks if all(
            t["NodeName"] != "h3" for t in tasks) else None)(converged(client, "web", 3)),
            20, interval=0.2, what="web's tasks to run on h1 and h2")
        took = time.monotonic() - started
        assert took < 2 * clean_lab.node_ttl, f"replaced after {took:.1f} s"
        assert {t["NodeName"] for t in after} <= {"h1", "h2"}
        orphans = [t for t in client.services.get("web").tasks() if t["ID"] == lost[0]["ID"]]
        assert orphans[0]["Status"]["State"] == "orphaned"
        assert orphans[0]["Status"]["Message"] == "node h3 is down"
    finally:
        clean_lab.start_agent("h3")
        clean_lab.wait_ready()
    gone = {f"web.{t['Slot']}.{t['ID']}" for t in lost}
    wait_until(lambda: not gone & set(containers(kran)), 20, interval=0.3,
               what="the lost tasks' containers to be removed once h3 is back")
    assert len(converged(client, "web", 3)) == 3


def test_drain_moves_tasks_off_and_pause_keeps_them(clean_lab: Lab, kran: Kran,
                                                     client: Client) -> None:
    create(kran, "web", "busybox", "sleep", "600", replicas=3)
    converged(client, "web", 3)
    try:
        paused = kran("node", "update", "--availability", "pause", "h1")
        assert paused.returncode == 0, paused.stderr
        time.sleep(1)
        assert "h1" in {t["NodeName"] for t in converged(client, "web", 3)}
        drained = kran("node", "update", "--availability", "drain", "h2")
        assert drained.returncode == 0, drained.stderr
        moved = wait_until(lambda: (lambda tasks: tasks if all(
            t["NodeName"] == "h3" or t["NodeName"] == "h1" for t in tasks) else None)(
            converged(client, "web", 3)), 30, interval=0.2, what="web's tasks to leave h2")
        # h1 is paused: the task that left h2 went to h3.
        assert sorted(t["NodeName"] for t in moved).count("h3") == 2
    finally:
        for host in ("h1", "h2"):
            kran("node", "update", "--availability", "active", host)


def test_scale_up_and_down(clean_lab: Lab, kran: Kran, client: Client) -> None:
    create(kran, "web", "busybox", "sleep", "600", replicas=2)
    converged(client, "web", 2)
    up = kran("service", "scale", "web=5")
    assert up.returncode == 0, up.stderr
    assert up.stdout.startswith("web scaled to 5\n") and "verify: Service converged" in up.stdout
    assert len(converged(client, "web", 5)) == 5
    down = kran("service", "scale", "-d", "web=1")
    assert down.returncode == 0, down.stderr
    wait_until(lambda: len(client.services.get("web").tasks()) == 1, 20, interval=0.2,
               what="slots 2..5 to be removed")
    [kept] = converged(client, "web", 1)
    assert kept["Slot"] == 1
    wait_until(lambda: list(containers(kran)) == [f"web.1.{kept['ID']}"], 20, interval=0.2,
               what="the removed tasks' containers to go")
    ls = kran("service", "ls")
    assert "1/1" in ls.stdout


def test_rolling_update_in_batches(clean_lab: Lab, kran: Kran, client: Client) -> None:
    create(kran, "web", "--update-parallelism", "2", "--update-monitor", "1s", "busybox", "sleep",
           "600", replicas=4)
    old = {t["ID"] for t in converged(client, "web", 4)}
    done = kran("service", "update", "--env-add", "VERSION=2", "web")
    assert done.returncode == 0, done.stderr
    assert "verify: Service converged" in done.stdout
    new = converged(client, "web", 4)
    assert not old & {t["ID"] for t in new}
    created = sorted(t["CreatedAt"] for t in new)
    # Two batches of two: the second made only after the first ran for its monitor (1 s).
    first, second = _seconds(created[1]), _seconds(created[2])
    assert second - first >= 1.0, created
    status = client.services.get("web").attrs["UpdateStatus"]
    assert status["State"] == "completed" and status["Message"] == "update completed"
    env = client.services.get("web").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert env == ["VERSION=2"]


def _seconds(rfc3339: str) -> float:
    from kran.imageinspect import parse_rfc3339  # noqa: PLC0415
    moment, nanos = parse_rfc3339(rfc3339)
    return moment.timestamp() + nanos / 1e9


def test_a_failing_update_pauses_then_rolls_back(clean_lab: Lab, kran: Kran,
                                                 client: Client) -> None:
    create(kran, "web", "busybox", "sleep", "600", replicas=3)
    old = {t["ID"] for t in converged(client, "web", 3)}
    failing = kran("service", "update", "--args", "sh -c 'exit 3'", "web")
    assert failing.returncode == 1
    assert "update paused due to failure or early termination of task" in failing.stderr
    assert "task: non-zero exit (3)" in failing.stderr
    status = client.services.get("web").attrs["UpdateStatus"]
    assert status["State"] == "paused" and "task: non-zero exit (3)" in status["Message"]
    # Only the first batch (one task) was touched; the others still run the old spec.
    still = {t["ID"] for t in live(client, "web") if t["Status"]["State"] == "running"}
    assert len(old & still) == 2
    history = kran("service", "ps", "--no-trunc", "web")
    assert '"task: non-zero exit (3)"' in history.stdout and "Failed" in history.stdout

    back = kran("service", "rollback", "web")
    assert back.returncode == 0, back.stderr
    assert "verify: Service converged" in back.stdout
    running = converged(client, "web", 3)
    attrs = client.services.get("web").attrs
    assert attrs["UpdateStatus"]["State"] == "rollback_completed"
    assert attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"] == ["sleep", "600"]
    assert len(old & {t["ID"] for t in running}) == 2


def test_service_ps_shows_each_slots_history(clean_lab: Lab, kran: Kran, client: Client) -> None:
    create(kran, "web", "--restart-max-attempts", "2", "busybox", "sh", "-c", "exit 1",
           replicas=1)

    def given_up() -> list[dict[str, Any]] | None:
        tasks = client.services.get("web").tasks()
        return tasks if len(tasks) == 3 and all(t["Status"]["State"] == "failed"
                                                for t in tasks) else None
    tasks = wait_until(given_up, 30, interval=0.2, what="slot 1 to fail three times")
    assert all(t["DesiredState"] == "shutdown" for t in tasks)
    shown = kran("service", "ps", "web")
    lines = shown.stdout.splitlines()
    assert lines[1].split()[1] == "web.1"
    assert [line.split()[1:3] for line in lines[2:]] == [["\\_", "web.1"]] * 2
    assert all('"task: non-zero exit (1)"' in line for line in lines[1:])
    quiet = kran("service", "ps", "-q", "--no-trunc", "web")
    assert quiet.stdout.split() == [t["ID"] for t in tasks]


def test_service_logs(clean_lab: Lab, kran: Kran, client: Client) -> None:
    create(kran, "echo", "busybox", "sh", "-c", "echo hello from $HOSTNAME; sleep 600",
           replicas=2)
    running = converged(client, "echo", 2)
    prefixes = {f"echo.{t['Slot']}.{t['ID'][:12]}@{t['NodeName']}" for t in running}

    def logged() -> list[str] | None:
        done = kran("service", "logs", "echo")
        lines = done.stdout.splitlines()
        return lines if len(lines) == 2 else None
    lines = wait_until(logged, 20, interval=0.3, what="both tasks' lines")
    assert {line.split("    | ")[0] for line in lines} == prefixes
    assert all(line.split("    | ")[1].startswith("hello from ") for line in lines)
    stamped = kran("service", "logs", "-t", "--no-task-ids", "echo")
    assert all(line.split()[0].endswith("Z") and "    | hello" in line
               for line in stamped.stdout.splitlines())


def test_rm_removes_the_tasks_containers(clean_lab: Lab, kran: Kran, client: Client) -> None:
    create(kran, "web", "busybox", "sleep", "600", replicas=3)
    converged(client, "web", 3)
    removed = kran("service", "rm", "web")
    assert removed.returncode == 0 and removed.stdout.strip() == "web", removed.stderr
    assert not [name for name in containers(kran) if name.startswith("web.")]
    assert kran("service", "ls", "-q").stdout.strip() == ""
