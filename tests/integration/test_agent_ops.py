"""Top, Stats, Diff, Commit and docker cp through a real kran-agent's Containers service.

Uses the agent of test_agent_containers (one per module, busybox imported);
every test removes what it made.
"""

from __future__ import annotations

import io
import json
import secrets
import tarfile
import urllib.request

import grpc
import pytest

from kran.api.v1 import containers_pb2 as pb
from kran.api.v1 import images_pb2
from tests.integration.agentkit import CALL_TIMEOUT, AgentUnderTest
from tests.procs import wait_until


def _start(agent: AgentUnderTest, *cmd: str, image: str = "busybox") -> str:  # noqa: F811
    cid = secrets.token_hex(32)
    agent.call("Create", pb.CreateContainerRequest(id=cid, name=f"c-{cid[:8]}",
                                                   config=pb.ContainerConfig(image=image, cmd=list(cmd))))
    agent.call("Start", pb.StartContainerRequest(container=cid))
    return cid


def _tar(**files: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _copy_from(agent: AgentUnderTest, cid: str, path: str) -> dict[str, bytes]:  # noqa: F811
    data = b"".join(c.data for c in agent.containers.CopyFrom(pb.CopyFromRequest(container=cid, path=path),
                                                              timeout=CALL_TIMEOUT))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() if m.isreg() else b"" for m in tar.getmembers()}


def _copy_to(agent: AgentUnderTest, cid: str, path: str, data: bytes) -> None:  # noqa: F811
    requests = [pb.CopyToRequest(header=pb.CopyToHeader(container=cid, path=path)),
                pb.CopyToRequest(chunk=data[:700]), pb.CopyToRequest(chunk=data[700:])]
    agent.containers.CopyTo(iter(requests), timeout=CALL_TIMEOUT)


def test_diff_commit_and_run_the_new_image(agent: AgentUnderTest) -> None:  # noqa: F811
    cid = _start(agent, "sh", "-c", "mkdir /work && echo hi > /work/hello && rm /bin/cat")
    assert agent.wait(cid) == 0
    diff = agent.call("Diff", pb.DiffRequest(container=cid)).changes
    assert [(c.kind, c.path) for c in diff] == [("C", "/bin"), ("D", "/bin/cat"), ("A", "/work"),
                                                ("A", "/work/hello")]
    image = agent.containers.Commit(pb.CommitRequest(
        container=cid, reference="snap:v1", message="a test", author="me",
        changes=['CMD ["busybox", "cat", "/work/hello"]']), timeout=CALL_TIMEOUT)
    assert image.repo_tags == ["snap:v1"]
    detail = agent.images.Inspect(images_pb2.InspectImageRequest(reference="snap:v1"), timeout=CALL_TIMEOUT)
    base = agent.images.Inspect(images_pb2.InspectImageRequest(reference="busybox"), timeout=CALL_TIMEOUT)
    assert len(detail.layers) == len(base.layers) + 1
    config = json.loads(detail.config)
    assert config["history"][-1]["created_by"] == "sh -c mkdir /work && echo hi > /work/hello && rm /bin/cat"
    assert config["author"] == "me" and config["container"] == cid
    run = _start(agent, image="snap:v1")
    assert agent.wait(run) == 0 and agent.logs(run) == b"hi\n"
    gone = _start(agent, "sh", "-c", "test -e /bin/cat || echo gone", image="snap:v1")
    assert agent.wait(gone) == 0 and agent.logs(gone) == b"gone\n"
    for container in (cid, run, gone):
        agent.remove(container)
    agent.images.Remove(images_pb2.RemoveImageRequest(reference="snap:v1"), timeout=CALL_TIMEOUT)


def test_top_stats_and_a_paused_commit_of_a_running_container(agent: AgentUnderTest) -> None:  # noqa: F811
    cid = _start(agent, "sleep", "1000")
    top = wait_until(lambda: (reply := agent.call("Top", pb.TopRequest(container=cid))).processes and reply)
    assert list(top.titles) == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    (process,) = top.processes
    assert process.fields[0] == "root" and process.fields[7] == "sleep 1000"
    assert int(process.fields[1]) == agent.inspect(cid).state.pid
    (one,) = agent.containers.Stats(pb.StatsRequest(container=cid), timeout=CALL_TIMEOUT)
    assert one.id == cid and one.pids == 1 and one.memory_usage > 0 and one.memory_limit > 0
    assert one.cpu_usage_ns > 0 and one.system_cpu_ns > one.cpu_usage_ns and one.read.seconds > 0
    stream = agent.containers.Stats(pb.StatsRequest(container=cid, stream=True), timeout=CALL_TIMEOUT)
    first, second = next(stream), next(stream)
    assert second.read.ToNanoseconds() - first.read.ToNanoseconds() >= 0.9e9
    stream.cancel()
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{agent.metrics_port}/metrics", timeout=10).read().decode()
    labels = f'{{id="{cid[:12]}",name="c-{cid[:8]}"}}'
    assert f"kran_container_pids{labels} 1.0" in metrics
    assert f"kran_container_memory_bytes{labels}" in metrics
    image = agent.containers.Commit(pb.CommitRequest(container=cid, pause=True), timeout=CALL_TIMEOUT)
    assert image.repo_tags == [] and agent.inspect(cid).state.status == "running"
    agent.call("Kill", pb.KillContainerRequest(container=cid))
    agent.wait(cid)
    with pytest.raises(grpc.RpcError) as caught:
        agent.call("Top", pb.TopRequest(container=cid))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "is not running" in caught.value.details()
    (stopped,) = agent.containers.Stats(pb.StatsRequest(container=cid, stream=True), timeout=CALL_TIMEOUT)
    assert (stopped.pids, stopped.memory_usage, stopped.cpu_usage_ns) == (0, 0, 0)
    agent.remove(cid)
    agent.images.Remove(images_pb2.RemoveImageRequest(reference=image.id), timeout=CALL_TIMEOUT)


def test_copy_in_and_out(agent: AgentUnderTest) -> None:  # noqa: F811
    stopped = agent.create("cat", "/in/file")
    with pytest.raises(grpc.RpcError) as caught:
        _copy_to(agent, stopped, "/in", _tar(file=b"x"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == f"Could not find the file /in in container c-{stopped[:8]}"
    _copy_to(agent, stopped, "/", _tar(**{"in/file": b"copied while stopped\n" * 100}))
    assert _copy_from(agent, stopped, "/in/file") == {"file": b"copied while stopped\n" * 100}
    agent.call("Start", pb.StartContainerRequest(container=stopped))
    assert agent.wait(stopped) == 0 and agent.logs(stopped) == b"copied while stopped\n" * 100
    running = _start(agent, "sleep", "1000")
    _copy_to(agent, running, "/", _tar(**{"live/file": b"live"}))
    assert _copy_from(agent, running, "/live") == {"live": b"", "live/file": b"live"}
    assert _copy_from(agent, running, "/etc/hostname") == {"hostname": f"{running[:12]}\n".encode()}
    with pytest.raises(grpc.RpcError) as caught:
        _copy_from(agent, running, "/nope")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        _copy_to(agent, running, "/", _tar(**{"../escape": b"x"}))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    diff = {(c.kind, c.path) for c in agent.call("Diff", pb.DiffRequest(container=running)).changes}
    assert {("A", "/live"), ("A", "/live/file")} <= diff
    for cid in (stopped, running):
        agent.remove(cid)
