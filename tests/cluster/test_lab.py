"""The multi-host lab itself: its hosts and images, a container on a chosen host, each failure
tool with the recovery that follows it, and a `down` that leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from pyroute2 import IPRoute

from deploy import labnet, labprocs
from deploy.lab import Lab
from tests.cluster.conftest import Kran, lab_name, lab_subnet, node_inspect
from tests.procs import BIN, ROOT, pid_alive, wait_until

# How much later than the TTL a node may show Down: etcd expires leases on a ~0.5 s tick, and
# the last heartbeat came up to a period before the failure.
TTL_SLACK = 2.0


def wait_state(kran: Kran, host: str, state: str, timeout: float) -> float:
    """Wait until `kran node inspect host` says state ("ready", "down"); the seconds it took."""
    started = time.monotonic()
    wait_until(lambda: node_inspect(kran, host)[host]["Status"]["State"] == state, timeout,
               interval=0.2, what=f"{host} to be {state}")
    return time.monotonic() - started


def run_detached(kran: Kran, host: str, *command: str) -> str:
    done = kran("run", "-d", "--node", host, "busybox", *command)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def container(kran: Kran, container_id: str) -> dict:
    done = kran("inspect", container_id)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[0]


def test_every_host_is_ready_at_its_own_address(lab: Lab, kran: Kran) -> None:
    nodes = node_inspect(kran, *(host.name for host in lab.hosts))
    assert sorted(nodes) == ["h1", "h2", "h3"]
    assert {nodes[h.name]["Status"]["Endpoint"] for h in lab.hosts} == {h.endpoint for h in lab.hosts}
    assert len({h.address for h in lab.hosts}) == 3
    assert all(node["Status"]["State"] == "ready" for node in nodes.values())
    for host in lab.hosts:
        # Each agent runs in its host's network namespace, not the machine's.
        agent_ns = os.stat(f"/proc/{host.agent_pid}/ns/net")
        host_ns = os.stat(labnet.NETNS_DIR / host.netns)
        assert (agent_ns.st_dev, agent_ns.st_ino) == (host_ns.st_dev, host_ns.st_ino)


def test_busybox_and_hello_world_are_on_every_host(lab: Lab, kran: Kran) -> None:
    for image in ("busybox", "hello-world"):
        ids = set()
        for host in lab.hosts:
            done = kran("image", "inspect", "--node", host.name, image)
            assert done.returncode == 0, f"{image} on {host.name}: {done.stderr}"
            ids.add(json.loads(done.stdout)[0]["Id"])
        assert len(ids) == 1, f"{image} differs between hosts: {ids}"


def test_a_container_runs_on_the_chosen_host(clean_lab: Lab, kran: Kran) -> None:
    done = kran("run", "--node", "h2", "--rm", "busybox", "hostname")
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
    container_id = run_detached(kran, "h3", "sleep", "300")
    assert container(kran, container_id)["Node"]["Name"] == "h3"
    # h3's agent made it: it lives in h3's cgroup parent.
    groups = labprocs.cgroup_groups(re.compile(re.escape(clean_lab.host("h3").netns)))
    assert any((group / container_id).is_dir() for group in groups)


def test_a_host_cut_off_is_down_within_the_ttl_and_comes_back(clean_lab: Lab, kran: Kran) -> None:
    node_id = node_inspect(kran, "h1")["h1"]["ID"]
    clean_lab.cut("h1")
    try:
        took = wait_state(kran, "h1", "down", clean_lab.node_ttl + 10)
        assert took <= clean_lab.node_ttl + TTL_SLACK, f"Down after {took:.1f} s"
        assert {n["Status"]["State"] for n in node_inspect(kran, "h2", "h3").values()} == {"ready"}
    finally:
        clean_lab.restore("h1")
    wait_state(kran, "h1", "ready", 15)
    assert node_inspect(kran, "h1")["h1"]["ID"] == node_id


def test_a_killed_agent_comes_back_and_takes_its_container_again(clean_lab: Lab, kran: Kran) -> None:
    container_id = run_detached(kran, "h2", "sleep", "300")
    clean_lab.kill_agent("h2")  # SIGKILL
    try:
        took = wait_state(kran, "h2", "down", clean_lab.node_ttl + 10)
        assert took <= clean_lab.node_ttl + TTL_SLACK, f"Down after {took:.1f} s"
        assert pid_alive(container(kran, container_id)["State"]["Pid"])  # the shim kept it running
    finally:
        clean_lab.start_agent("h2")
    wait_state(kran, "h2", "ready", 15)
    assert container(kran, container_id)["State"]["Status"] == "running"
    stopped = kran("stop", "-t", "1", container_id)  # through the new agent and the adopted shim
    assert stopped.returncode == 0, stopped.stderr
    assert container(kran, container_id)["State"]["Status"] == "exited"


def test_a_paused_agent_is_down_until_it_resumes(clean_lab: Lab, kran: Kran) -> None:
    clean_lab.pause_agent("h3")
    try:
        took = wait_state(kran, "h3", "down", clean_lab.node_ttl + 10)
        assert took <= clean_lab.node_ttl + TTL_SLACK, f"Down after {took:.1f} s"
    finally:
        clean_lab.resume_agent("h3")
    wait_state(kran, "h3", "ready", 15)


def test_the_cluster_serves_with_one_etcd_member_down(clean_lab: Lab, kran: Kran) -> None:
    clean_lab.kill_etcd(0)
    try:
        assert {n["Status"]["State"] for n in node_inspect(kran, "h1", "h2", "h3").values()} == {"ready"}
        done = kran("run", "--node", "h1", "--rm", "busybox", "true")  # writes go through too
        assert done.returncode == 0, done.stderr
    finally:
        clean_lab.start_etcd(0)
    assert kran("node", "ls").returncode == 0


def test_agents_keep_their_registration_through_the_other_controllers(clean_lab: Lab, kran: Kran) -> None:
    ids = {host: node["ID"] for host, node in node_inspect(kran, "h1", "h2", "h3").items()}
    clean_lab.kill_controller(0)  # the one every agent registered with
    try:
        time.sleep(clean_lab.node_ttl + TTL_SLACK)  # longer than a lease lives without heartbeats
        survivor = clean_lab.controller_endpoints[1]
        done = kran("-H", survivor, "node", "inspect", "h1", "h2", "h3")
        assert done.returncode == 0, done.stderr
        nodes = {n["Description"]["Hostname"]: n for n in json.loads(done.stdout)}
        assert {host: n["ID"] for host, n in nodes.items()} == ids
        assert {n["Status"]["State"] for n in nodes.values()} == {"ready"}
    finally:
        clean_lab.start_controller(0)


def traces(lab: Lab) -> dict[str, set[str]]:
    """What the lab left on the machine: its namespaces, links, mounts, cgroups, processes, files.

    Only what is the lab's by name or directory: other tests on this machine may mount and
    start things meanwhile.
    """
    named = re.compile(rf"{re.escape(lab.name)}(0|-h\d+)")
    with IPRoute() as ipr:
        links = {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
    with open("/proc/self/mountinfo") as mountinfo:
        mounts = {line.split()[4] for line in mountinfo}
    return {
        "netns": set(labnet.lab_netns(lab.name)),
        "links": {name for name in links if named.fullmatch(name)},
        "mounts": {point for point in mounts
                   if point.startswith(f"{lab.dir}/") or named.fullmatch(Path(point).name)},
        "cgroups": {str(group) for group in labprocs.cgroup_groups(named)},
        "processes": {labprocs.command_line(pid) for pid in labprocs.pids_mentioning(f"{lab.dir}/")},
        "files": {str(lab.dir)} if lab.dir.exists() else set(),
    }


def test_down_leaves_no_trace(lab: Lab, lab_root: Path) -> None:
    small = Lab(name=lab_name("kd"), hosts=1, controllers=1, root=lab_root, subnet=lab_subnet(215))
    assert not any(traces(small).values()), f"a lab {small.name} is up already"
    pids: list[int] = []
    host = small.host("h1")
    try:
        small.up()
        run = subprocess.run([str(BIN / "kran"), "run", "-d", "busybox", "sleep", "300"],
                             env=small.env(), capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        during = traces(small)
        assert during["netns"] == {host.netns} and during["links"] == {small.bridge, host.netns}
        assert during["cgroups"] and during["processes"] and during["mounts"] and during["files"]
        group = [g for g in labprocs.cgroup_groups(re.compile(re.escape(host.netns))) if "pids" in g.parts][0]
        pids = [host.agent_pid, *(c.pid for c in small.controllers), *(m.pid for m in small.etcd),
                *labprocs.cgroup_pids(group), *labprocs.pids_in_netns(labnet.NETNS_DIR / host.netns)]
        assert len(pids) >= 7  # agent, controller, 3 etcd, the container and its shim
    finally:
        small.down()
    assert not any(traces(small).values())
    assert not [pid for pid in pids if pid_alive(pid)]
    small.down()  # twice is fine
    assert not any(traces(small).values())


def test_down_after_an_interrupted_up_from_another_process(lab: Lab, lab_root: Path) -> None:
    small = Lab(name=lab_name("kp"), hosts=1, controllers=1, root=lab_root, subnet=lab_subnet(216))
    assert not any(traces(small).values()), f"a lab {small.name} is up already"
    args = ["--name", small.name, "--hosts", "1", "--controllers", "1", "--root", str(lab_root),
            "--subnet", str(small.network)]
    up = subprocess.Popen([sys.executable, "-m", "deploy.lab", "up", *args], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Stop it once the controller is started: etcd and a controller run, no agent yet.
        wait_until(lambda: small.state_file.exists() and
                   json.loads(small.state_file.read_text())["controllers"][0]["pid"], 30, interval=0.02,
                   what="up to start the controller")
    finally:
        os.kill(up.pid, signal.SIGKILL)
        up.wait()
    assert traces(small)["processes"]
    down = subprocess.run([sys.executable, "-m", "deploy.lab", "down", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 0 and "is down" in down.stdout, down.stderr
    assert not any(traces(small).values())
