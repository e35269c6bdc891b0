"""`kran events` and the SDK's client.events() against a real controller and agent.

History (--since/--until), live streams to several clients at once, docker's
filters and line format, node events from presence, and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from datetime import datetime, timezone

import pytest

from kran.client import Client
from tests.procs import wait_until

LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9})(Z|[+-]\d\d:\d\d) (\w+) (\w+) (\S+)(?: \((.*)\))?$")


@pytest.fixture(scope="module")
def images(cluster, busybox_tar):
    cluster.ok("import", str(busybox_tar), "busybox:latest", "-c", 'CMD ["sh"]')


def parse(line: str) -> dict:
    """One `kran events` line: time, type, action, id and attributes."""
    found = LINE.match(line)
    assert found, f"not an events line: {line!r}"
    attributes = dict(item.split("=", 1) for item in found.group(6).split(", ")) if found.group(6) else {}
    return {"type": found.group(3), "action": found.group(4), "id": found.group(5),
            "attributes": attributes}


def history(cluster, since: float, *args: str) -> list[dict]:
    """The events since `since` (a Unix time) until now, through `kran events --since --until`."""
    result = cluster.kran("events", "--since", f"{since:.9f}", "--until", f"{time.time():.9f}", *args)
    assert result.code == 0, result.err
    return [parse(line) for line in result.out.splitlines()]


def actions_of(events: list[dict], name: str) -> list[str]:
    return [e["action"] for e in events if e["attributes"].get("name") == name]


def streamed(terminal, pattern: str, timeout: float = 20.0) -> list[dict]:
    """Wait until a `kran events` terminal printed a line matching pattern; every line so far."""
    terminal.expect(pattern.encode(), timeout)
    return [parse(line) for line in terminal.output.decode().splitlines() if line.strip()]


def test_run_records_create_start_die_destroy(cluster, names):
    names.append("ev-life")
    since = time.time()
    assert cluster.kran("run", "--name", "ev-life", "--label", "team=blue", "busybox",
                        "sh", "-c", "exit 3").code == 3
    cluster.ok("rm", "ev-life")
    events = history(cluster, since, "--filter", "container=ev-life")
    assert [e["action"] for e in events] == ["create", "start", "die", "destroy"], events
    container_id = events[0]["id"]
    assert re.fullmatch(r"[0-9a-f]{64}", container_id)
    assert all(e["type"] == "container" and e["id"] == container_id for e in events)
    assert events[0]["attributes"] == {"image": "busybox", "name": "ev-life", "team": "blue"}
    assert events[2]["attributes"]["exitCode"] == "3"


def test_line_format_and_json(cluster, names):
    names.append("ev-format")
    since = time.time()
    cluster.ok("create", "--name", "ev-format", "busybox")
    result = cluster.kran("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
                          "--filter", "container=ev-format")
    [line] = result.out.splitlines()
    assert re.fullmatch(r"\S+Z container create [0-9a-f]{64} \(image=busybox, name=ev-format\)", line)
    formatted = cluster.kran("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
                             "--filter", "container=ev-format", "--format", "json")
    data = json.loads(formatted.out)
    assert data["Type"] == "container" and data["Action"] == "create"
    assert data["Actor"]["Attributes"]["name"] == "ev-format"
    assert data["Node"]["Name"] == cluster.hostname
    template = cluster.kran("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
                            "--filter", "container=ev-format", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
    assert template.out == "create ev-format\n"


def test_since_takes_rfc3339_unix_times_and_durations(cluster, names):
    names.append("ev-since")
    cluster.ok("create", "--name", "ev-since", "busybox")
    until = f"{time.time() + 1:.3f}"
    started = datetime.now(timezone.utc).timestamp() - 60
    forms = [f"{started:.0f}", datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "1m"]
    for since in forms:
        result = cluster.kran("events", "--since", since, "--until", until, "--filter", "container=ev-since")
        assert result.code == 0, result.err
        assert [parse(line)["action"] for line in result.out.splitlines()] == ["create"], since
    later = cluster.kran("events", "--since", until, "--until", f"{float(until) + 0.5:.3f}",
                         "--filter", "container=ev-since")
    assert later.code == 0 and later.out == ""


def test_kill_and_stop_events(cluster, names):
    names += ["ev-kill", "ev-stop"]
    since = time.time()
    cluster.ok("run", "-d", "--name", "ev-kill", "busybox", "sleep", "60")
    cluster.ok("kill", "ev-kill")
    cluster.ok("run", "-d", "--name", "ev-stop", "busybox", "sleep", "60")
    cluster.ok("stop", "-t", "1", "ev-stop")

    def settled():
        events = history(cluster, since, "--filter", "event=kill", "--filter", "event=die",
                         "--filter", "event=stop")
        return events if len(events) >= 4 else None
    events = wait_until(settled, 20, interval=0.3, what="kill, die, stop")
    assert actions_of(events, "ev-kill") == ["kill", "die"]
    kill = [e for e in events if e["attributes"].get("name") == "ev-kill"]
    assert kill[0]["attributes"]["signal"] == "9" and kill[1]["attributes"]["exitCode"] == "137"
    assert actions_of(events, "ev-stop") == ["die", "stop"]


def test_two_clients_stream_at_once(cluster, names):
    names.append("ev-two")
    pattern = r"container create \w+ \(image=busybox, name=ev-two\)"
    since = f"{time.time():.9f}"
    first = cluster.terminal("events", "--since", since, "--filter", "type=container")
    second = cluster.terminal("events", "--since", since, "--filter", "event=create")
    sdk = Client(cluster.address)
    stream = sdk.events(filters={"container": "ev-two"})
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(e for e in stream if e.action == "create"))
    reader.start()
    try:
        cluster.ok("create", "--name", "ev-two", "busybox")
        assert streamed(first, pattern)[-1]["attributes"]["name"] == "ev-two"
        assert streamed(second, pattern)[-1]["action"] == "create"
        wait_until(lambda: seen, 20, what="the SDK's stream to see the create")
        assert (seen[0].type, seen[0].name, seen[0].node_name) == ("container", "ev-two", cluster.hostname)
    finally:
        stream.close()
        reader.join(10)
        assert not reader.is_alive()
        first.close()
        second.close()
        sdk.close()


def test_ctrl_c_ends_quietly(cluster):
    terminal = cluster.terminal("events", "--filter", "type=node")
    try:
        time.sleep(0.5)  # let it open the stream
        os.kill(terminal.process.pid, signal.SIGINT)   # what Ctrl-C at a shell sends
        assert terminal.wait() == 130
        assert terminal.output == b"", terminal.output
    finally:
        terminal.close()


def test_image_events_and_filters(cluster, images, busybox_tar, tmp_path):
    since = time.time()
    cluster.ok("import", str(busybox_tar), "ev-image:0")
    cluster.ok("tag", "busybox", "ev-image:1")
    cluster.ok("save", "-o", str(tmp_path / "saved.tar"), "ev-image:1")
    cluster.ok("rmi", "ev-image:1", "ev-image:0")
    events = history(cluster, since, "--filter", "type=image")
    assert [(e["action"], e["attributes"]["name"]) for e in events][:4] == [
        ("import", "ev-image:0"), ("tag", "ev-image:1"), ("save", "ev-image:1"), ("untag", "ev-image:1")]
    assert [e["action"] for e in events[4:]] == ["untag", "delete"], events
    assert events[0]["id"].startswith("sha256:")
    assert history(cluster, since, "--filter", "image=ev-image:1", "--filter", "event=tag")[0]["action"] == "tag"
    assert history(cluster, since, "--filter", "type=container") == []


def test_label_node_and_image_filters(cluster, names):
    names += ["ev-blue", "ev-red"]
    since = time.time()
    cluster.ok("create", "--name", "ev-blue", "--label", "team=blue", "busybox")
    cluster.ok("create", "--name", "ev-red", "--label", "team=red", "busybox")
    assert [e["attributes"]["name"] for e in history(cluster, since, "--filter", "label=team=blue")] == ["ev-blue"]
    assert {e["attributes"]["name"] for e in history(cluster, since, "--filter", "label=team")} == {
        "ev-blue", "ev-red"}
    on_node = history(cluster, since, "--filter", f"node={cluster.hostname}", "--filter", "type=container")
    assert {e["attributes"]["name"] for e in on_node} == {"ev-blue", "ev-red"}
    assert history(cluster, since, "--filter", "node=elsewhere") == []
    assert len(history(cluster, since, "--filter", "image=busybox")) == 2


def test_bad_filter_and_time(cluster):
    result = cluster.kran("events", "--filter", "colour=red", "--until", "0s")
    assert result.code == 1 and "invalid filter 'colour'" in result.err
    result = cluster.kran("events", "--since", "yesterday")
    assert result.code == 1 and "invalid value for --since" in result.err
    result = cluster.kran("events", "--filter", "type")
    assert result.code == 125 and "bad format of filter" in result.err


def test_node_down_and_ready(cluster):
    since = time.time()
    cluster.agent.kill()
    cluster.wait_status("Down")
    cluster.start_agent()
    cluster.wait_status("Ready")

    def seen():
        events = history(cluster, since, "--filter", "type=node")
        actions = [e["action"] for e in events]
        return events if "down" in actions and "ready" in actions[actions.index("down"):] else None
    events = wait_until(seen, 20, interval=0.3, what="node down then ready")
    assert all(e["attributes"].get("name") == cluster.hostname for e in events)
    assert [e["action"] for e in events].count("down") == 1
    assert "update" in [e["action"] for e in events]  # the agent registered again
