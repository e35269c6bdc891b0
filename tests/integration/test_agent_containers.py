"""The agent's Containers service, driven directly over gRPC on a real kran-agent.

One agent (registered with a real controller) per module, with its own
state directory and cgroup parent; the busybox image is imported into its
store. Requests carry the container id, as the controller's do. Every test
removes its containers and checks that nothing (record, bundle, mount,
cgroup, shim) outlives them.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
import urllib.request

import grpc
import pytest

from kran.api.v1 import containers_pb2 as pb
from tests.integration.agentkit import CALL_TIMEOUT, AgentUnderTest, Attached
from tests.procs import pid_alive, wait_until

def test_create_start_wait_logs(agent: AgentUnderTest) -> None:
    cid = agent.create("sh", "-c", "echo out; echo err >&2; exit 3", env=["A=1"])
    container = agent.inspect(cid)
    assert (container.path, list(container.args)) == ("sh", ["-c", "echo out; echo err >&2; exit 3"])
    assert "A=1" in container.config.env and container.config.hostname == cid[:12]
    started = agent.call("Start", pb.StartContainerRequest(container=cid))
    assert started.state.status in ("running", "exited") and started.state.sequence > 1
    assert agent.wait(cid) == 3
    state = agent.inspect(cid).state
    assert (state.status, state.exit_code, state.pid) == ("exited", 3, 0)
    assert state.finished_at.seconds >= state.started_at.seconds > 0
    assert agent.logs(cid) == b"out\nerr\n"
    assert agent.logs(cid, stdout=False) == b"err\n"
    entries = list(agent.containers.Logs(pb.LogsRequest(container=cid, stdout=True, tail="2"), timeout=10))
    assert [e.data for e in entries] == [b"out\n"] and entries[0].time.seconds >= state.started_at.seconds
    agent.remove(cid)


def test_attach_with_start_loses_no_output(agent: AgentUnderTest) -> None:
    cid = agent.create("echo", "hello")
    attached = Attached(agent, pb.AttachOptions(container=cid, stdout=True, stderr=True, start=True))
    last = attached.end()
    assert attached.output() == b"hello\n"
    assert last.WhichOneof("part") == "exit" and last.exit.code == 0
    agent.remove(cid)


@pytest.mark.parametrize("cmd, code, message", [
    (["no-such-command"], 127, "executable file not found"),
    (["/etc/passwd"], 126, "permission denied"),
])
def test_a_command_that_cannot_run(agent: AgentUnderTest, cmd, code, message) -> None:
    cid = agent.create(*cmd)
    with pytest.raises(grpc.RpcError) as failure:
        agent.call("Start", pb.StartContainerRequest(container=cid))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in failure.value.details()
    state = agent.inspect(cid).state
    assert (state.status, state.exit_code) == ("exited", code) and message in state.error
    assert agent.wait(cid) == code
    assert not agent.bundle(cid).exists()
    agent.remove(cid)


def test_unknown_image_and_bad_config(agent: AgentUnderTest) -> None:
    def create(**config):
        request = pb.CreateContainerRequest(id=secrets.token_hex(32), name="bad",
                                            config=pb.ContainerConfig(**{"image": "busybox", **config}))
        with pytest.raises(grpc.RpcError) as failure:
            agent.call("Create", request)
        return failure.value.code(), failure.value.details()
    assert create(image="nope") == (grpc.StatusCode.NOT_FOUND, "No such image: nope")
    assert create(memory_bytes=1 << 20) == (grpc.StatusCode.INVALID_ARGUMENT, "Minimum memory limit allowed is 6MB")
    assert create(entrypoint_set=True) == (grpc.StatusCode.INVALID_ARGUMENT, "No command specified")
    assert create(auto_remove=True, restart_policy=pb.RestartPolicy(name="always")) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Conflicting options: --restart and --rm")
    assert agent.call("List", pb.ListContainersRequest(all=True)).containers == []


def test_stop_kill_restart_remove(agent: AgentUnderTest) -> None:
    cid = agent.create("sleep", "100", name="sleeper")
    with pytest.raises(grpc.RpcError) as failure:
        agent.call("Kill", pb.KillContainerRequest(container=cid))
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.value.details() == f"cannot kill container: {cid}: container {cid} is not running"
    agent.call("Start", pb.StartContainerRequest(container=cid))
    agent.call("Start", pb.StartContainerRequest(container=cid))  # already running: nothing happens
    first_pid = agent.inspect(cid).state.pid
    assert first_pid > 0 and pid_alive(first_pid)
    # sleep as pid 1 ignores SIGTERM: stop kills it after the timeout.
    began = time.monotonic()
    stopped = agent.call("Stop", pb.StopContainerRequest(container=cid, timeout=1, timeout_set=True))
    assert 0.9 < time.monotonic() - began < 10
    assert (stopped.state.status, stopped.state.exit_code) == ("exited", 137)
    agent.call("Stop", pb.StopContainerRequest(container=cid))  # stopped: no error
    agent.call("Restart", pb.StopContainerRequest(container=cid, timeout=0, timeout_set=True))
    assert agent.inspect(cid).state.status == "running"
    killed = agent.call("Kill", pb.KillContainerRequest(container=cid, signal="SIGKILL"))
    assert (killed.state.status, killed.state.exit_code) == ("exited", 137)
    with pytest.raises(grpc.RpcError) as failure:
        agent.call("Kill", pb.KillContainerRequest(container=cid, signal="NOPE"))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    agent.call("Start", pb.StartContainerRequest(container=cid))
    shim_pid = agent.shim_pid(cid)
    with pytest.raises(grpc.RpcError) as failure:
        agent.call("Remove", pb.RemoveContainerRequest(container="sleeper"))
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.value.details() == ('cannot remove container "/sleeper": container is running: '
                                       "stop the container before removing or force remove")
    agent.remove("sleeper", shim_pid)
    with pytest.raises(grpc.RpcError) as failure:
        agent.inspect(cid)
    assert (failure.value.code(), failure.value.details()) == (grpc.StatusCode.NOT_FOUND,
                                                               "No such container: " + cid)


def test_the_filesystem_survives_stop_and_start(agent: AgentUnderTest) -> None:
    cid = agent.create("sh", "-c", "cat /kept 2>/dev/null; date > /kept")
    for _ in range(2):
        agent.call("Start", pb.StartContainerRequest(container=cid))
        assert agent.wait(cid) == 0
    assert len(agent.logs(cid).splitlines()) == 1
    agent.remove(cid)


def test_on_failure_restarts_with_backoff(agent: AgentUnderTest) -> None:
    cid = agent.create("sh", "-c", "echo run; exit 2",
                       restart_policy=pb.RestartPolicy(name="on-failure", maximum_retry_count=2))
    agent.call("Start", pb.StartContainerRequest(container=cid))
    state = wait_until(lambda: (s := agent.inspect(cid).state).status == "exited" and s.restart_count == 2 and s,
                       20, 0.05, "two restarts")
    assert state.exit_code == 2
    time.sleep(0.5)
    assert agent.inspect(cid).state.restart_count == 2 and agent.logs(cid) == b"run\n" * 3
    agent.remove(cid)


def test_always_is_not_restarted_after_a_user_stop(agent: AgentUnderTest) -> None:
    cid = agent.create("sh", "-c", "sleep 0.3; exit 0", restart_policy=pb.RestartPolicy(name="always"))
    agent.call("Start", pb.StartContainerRequest(container=cid))
    wait_until(lambda: agent.inspect(cid).state.restart_count >= 1, 10, 0.05, "a restart")
    agent.call("Stop", pb.StopContainerRequest(container=cid, timeout=5, timeout_set=True))
    count = agent.inspect(cid).state.restart_count
    time.sleep(1)
    state = agent.inspect(cid).state
    assert state.status == "exited" and state.restart_count == count
    agent.remove(cid)


def test_auto_remove(agent: AgentUnderTest) -> None:
    cid = agent.create("sh", "-c", "exit 4", auto_remove=True)
    waiter = agent.containers.Wait.future(pb.WaitContainerRequest(container=cid, condition="removed"),
                                          timeout=CALL_TIMEOUT)
    agent.call("Start", pb.StartContainerRequest(container=cid))
    assert waiter.result().status_code == 4
    agent.assert_gone(cid)
    with pytest.raises(grpc.RpcError) as failure:
        agent.inspect(cid)
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND


def test_stdin_detach_and_several_attachers(agent: AgentUnderTest) -> None:
    cid = agent.create("cat", open_stdin=True)
    agent.call("Start", pb.StartContainerRequest(container=cid))
    options = dict(container=cid, stdin=True, stdout=True, stderr=True)
    first = Attached(agent, pb.AttachOptions(**options))
    second = Attached(agent, pb.AttachOptions(**options, detach_keys="ctrl-x"))
    time.sleep(0.3)
    first.send(stdin=b"hello\n")
    first.wait_output(b"hello\n")
    second.wait_output(b"hello\n")
    first.send(stdin=b"ab\x10")
    first.send(stdin=b"\x11ignored")
    assert first.end().detached
    assert b"ignored" not in first.output()
    # Each attacher has its own connection to the shim: let "ab" arrive before "more".
    second.wait_output(b"hello\nab")
    second.send(stdin=b"more\n\x18")
    assert second.end().detached
    assert agent.inspect(cid).state.status == "running"
    third = Attached(agent, pb.AttachOptions(container=cid, stdout=True, logs=True))
    third.wait_output(b"hello\nabmore\n")
    agent.call("Stop", pb.StopContainerRequest(container=cid, timeout=5, timeout_set=True))
    last = third.end()
    assert last.WhichOneof("part") == "exit" and last.exit.code == 137
    agent.remove(cid)


def test_terminal(agent: AgentUnderTest) -> None:
    cid = agent.create("sh", tty=True, open_stdin=True, stdin_once=True)
    attached = Attached(agent, pb.AttachOptions(container=cid, stdin=True, stdout=True, start=True))
    attached.send(resize=pb.TerminalSize(height=33, width=101))
    attached.send(stdin=b"stty size; echo $((40+2))\n")
    attached.wait_output(b"42")
    assert b"33 101" in attached.output()
    attached.send(stdin=b"exit 5\n")
    last = attached.end()
    assert last.exit.code == 5
    agent.remove(cid)


def test_logs_follow_until_the_container_stops(agent: AgentUnderTest) -> None:
    cid = agent.create("sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done")
    agent.call("Start", pb.StartContainerRequest(container=cid))
    began = time.monotonic()
    assert agent.logs(cid, follow=True) == b"1\n2\n3\n"
    assert time.monotonic() - began < 5
    agent.remove(cid)


def test_containers_outlive_an_agent_killed_with_sigkill(agent: AgentUnderTest) -> None:
    ticker = agent.create("sh", "-c", "trap 'exit 9' TERM; while true; do echo tick; sleep 0.1; done")
    short = agent.create("sh", "-c", "sleep 1; exit 7")
    for cid in (ticker, short):
        agent.call("Start", pb.StartContainerRequest(container=cid))
    pid = agent.inspect(ticker).state.pid
    sequence = agent.inspect(short).state.sequence
    agent.kill()
    time.sleep(1.5)
    assert pid_alive(pid)
    agent.start()
    state = agent.inspect(ticker).state
    assert (state.status, state.pid) == ("running", pid)
    short_state = wait_until(lambda: (s := agent.inspect(short).state).status == "exited" and s, 10, 0.1)
    assert short_state.exit_code == 7 and short_state.sequence > sequence
    before = agent.logs(ticker).count(b"tick")
    wait_until(lambda: agent.logs(ticker).count(b"tick") > before + 2, 10, 0.1, "more ticks")
    stopped = agent.call("Stop", pb.StopContainerRequest(container=ticker, timeout=5, timeout_set=True))
    assert stopped.state.exit_code == 9
    for cid in (ticker, short):
        agent.remove(cid)


def test_list_prune_rename_wait(agent: AgentUnderTest) -> None:
    running = agent.create("sleep", "100", name="lister", labels={"team": "a"})
    stopped = agent.create("true", name="pruned")
    agent.call("Start", pb.StartContainerRequest(container=running))
    agent.call("Start", pb.StartContainerRequest(container=stopped))
    assert agent.wait(stopped, "not-running") == 0

    def names(**request) -> list[str]:
        return [c.name for c in agent.call("List", pb.ListContainersRequest(**request)).containers]
    assert names() == ["lister"]
    assert names(all=True) == ["pruned", "lister"]
    assert names(filters={"status": pb.FilterValues(values=["exited"])}) == ["pruned"]
    assert names(all=True, filters={"label": pb.FilterValues(values=["team=a"])}) == ["lister"]
    assert names(all=True, limit=1) == ["pruned"]
    renamed = agent.call("Rename", pb.RenameContainerRequest(container="lister", name="renamed"))
    assert renamed.name == "renamed" and agent.inspect("renamed").id == running
    with pytest.raises(grpc.RpcError) as failure:
        agent.call("Rename", pb.RenameContainerRequest(container="renamed", name="pruned"))
    assert failure.value.code() == grpc.StatusCode.ALREADY_EXISTS
    pruned = agent.call("Prune", pb.PruneContainersRequest())
    assert list(pruned.deleted) == [stopped]
    agent.assert_gone(stopped)
    waiter = agent.containers.Wait.future(pb.WaitContainerRequest(container=running, condition="next-exit"),
                                          timeout=CALL_TIMEOUT)
    time.sleep(0.3)
    assert not waiter.done()
    os.kill(agent.inspect(running).state.pid, signal.SIGKILL)
    assert waiter.result().status_code == 137
    agent.remove(running)


def test_metrics_count_containers_by_state(agent: AgentUnderTest) -> None:
    cid = agent.create("sleep", "100")
    agent.call("Start", pb.StartContainerRequest(container=cid))

    def scraped() -> str:
        url = f"http://127.0.0.1:{agent.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.read().decode()
    # The gauges follow the containers within a refresh (containers of earlier tests go first).
    text = wait_until(lambda: 'kran_containers{state="running"} 1.0' in (t := scraped())
                      and 'kran_containers{state="exited"} 0.0' in t and t, 10, 0.2)
    assert f'kran_container_pids{{id="{cid[:12]}"' in text
    agent.remove(cid)
