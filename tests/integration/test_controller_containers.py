"""The controller's Containers service over a real agent, through gRPC.

A real kran-controller (embedded etcd) and kran-agent; busybox imported
through the controller. The calls here are the raw gRPC ones, so what is
checked is the controller's side: records and names in etcd, forwarding,
states reported by the agent, streams relayed both ways.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from kran.api.v1 import containers_pb2 as c_pb
from kran.api.v1 import containers_pb2_grpc, system_pb2, system_pb2_grpc
from tests.integration.test_metrics import scrape, value
from tests.procs import wait_until

WAIT_METHOD = "/kran.api.v1.Containers/Wait"


@pytest.fixture(scope="module")
def stub(cluster, busybox_tar) -> Iterator[containers_pb2_grpc.ContainersStub]:
    """A Containers stub on the controller, with busybox imported; removes every container after."""
    cluster.ok("import", str(busybox_tar), "busybox:latest", "-c", 'CMD ["sh"]')
    with grpc.insecure_channel(cluster.address) as channel:
        containers = containers_pb2_grpc.ContainersStub(channel)
        try:
            yield containers
        finally:
            for made in containers.List(c_pb.ListContainersRequest(all=True)).containers:
                containers.Remove(c_pb.RemoveContainerRequest(container=made.id, force=True))


def create(stub, name: str, *cmd: str, **config: object) -> c_pb.Container:
    return stub.Create(c_pb.CreateContainerRequest(
        name=name, config=c_pb.ContainerConfig(image="busybox", cmd=list(cmd), **config)))


def inspect(stub, ref: str) -> c_pb.Container:
    return stub.Inspect(c_pb.InspectContainerRequest(container=ref))


def fails(call, *args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args)
    return caught.value


def test_lifecycle_through_the_controller(cluster, stub) -> None:
    made = create(stub, "life", "sleep", "30")
    assert made.node_name == cluster.hostname and len(made.id) == 64
    assert made.path == "sleep" and list(made.args) == ["30"]
    assert made.state.status == "created"
    started = stub.Start(c_pb.StartContainerRequest(container="life"))
    assert started.state.status == "running" and started.state.pid > 0
    shown = inspect(stub, made.id[:12])
    assert shown.state.status == "running" and shown.node_name == cluster.hostname
    running = stub.List(c_pb.ListContainersRequest()).containers
    assert made.id in [x.id for x in running]
    stopped = stub.Stop(c_pb.StopContainerRequest(container="life", timeout=1, timeout_set=True))
    assert stopped.state.status == "exited"
    assert inspect(stub, "life").state.status == "exited"
    assert made.id not in [x.id for x in stub.List(c_pb.ListContainersRequest()).containers]
    stub.Remove(c_pb.RemoveContainerRequest(container="life"))
    error = fails(inspect, stub, "life")
    assert error.code() == grpc.StatusCode.NOT_FOUND and error.details() == "No such container: life"
    create(stub, "life", "true")  # the name is free again
    stub.Remove(c_pb.RemoveContainerRequest(container="life"))


def test_refusals(stub) -> None:
    create(stub, "taken", "true")
    error = fails(create, stub, "taken", "true")
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error.details().startswith('Conflict. The container name "/taken" is already in use')
    error = fails(stub.Create, c_pb.CreateContainerRequest(
        config=c_pb.ContainerConfig(image="nosuchimage")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "No such image: nosuchimage:latest"
    error = fails(create, stub, "bad name", "true")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    names = [x.name for x in stub.List(c_pb.ListContainersRequest(all=True)).containers]
    assert names.count("taken") == 1 and "bad name" not in names
    stub.Remove(c_pb.RemoveContainerRequest(container="taken"))


def test_an_exit_reaches_etcd_through_the_agents_reports(stub) -> None:
    made = create(stub, "exits", "sh", "-c", "exit 3")
    stub.Start(c_pb.StartContainerRequest(container=made.id))

    def exited() -> c_pb.Container | None:
        shown = inspect(stub, "exits")
        return shown if shown.state.status == "exited" else None
    shown = wait_until(exited, 20, what="the exit to be reported")
    assert shown.state.exit_code == 3
    exited_list = stub.List(c_pb.ListContainersRequest(
        all=True, filters={"exited": c_pb.FilterValues(values=["3"])})).containers
    assert [x.name for x in exited_list] == ["exits"]
    stub.Remove(c_pb.RemoveContainerRequest(container="exits"))


def test_auto_remove_removes_the_record(stub) -> None:
    create(stub, "gone-soon", "true", auto_remove=True)
    stub.Start(c_pb.StartContainerRequest(container="gone-soon"))

    def forgotten() -> bool:
        names = [x.name for x in stub.List(c_pb.ListContainersRequest(all=True)).containers]
        return "gone-soon" not in names
    wait_until(forgotten, 20, what="the removal to be reported")


def test_wait_headers_come_before_the_start(cluster, stub) -> None:
    made = create(stub, "waited", "sh", "-c", "exit 7")
    with grpc.insecure_channel(cluster.address) as channel:
        waiting = channel.unary_stream(
            WAIT_METHOD, request_serializer=c_pb.WaitContainerRequest.SerializeToString,
            response_deserializer=c_pb.WaitContainerResponse.FromString)(
                c_pb.WaitContainerRequest(container="waited", condition="next-exit"), timeout=30)
        waiting.initial_metadata()  # the waiter is registered on the agent
        stub.Start(c_pb.StartContainerRequest(container=made.id[:8]))
        assert [reply.status_code for reply in waiting] == [7]
    stub.Remove(c_pb.RemoveContainerRequest(container="waited"))


def test_attach_with_start_and_stdin(stub) -> None:
    create(stub, "talk", "sh", "-c", "read line; echo got:$line", open_stdin=True,
           stdin_once=True)

    def requests() -> Iterator[c_pb.AttachRequest]:
        yield c_pb.AttachRequest(options=c_pb.AttachOptions(
            container="talk", stdin=True, stdout=True, stderr=True, start=True))
        yield c_pb.AttachRequest(stdin=b"hello\n")
        yield c_pb.AttachRequest(close_stdin=True)
        time.sleep(5)  # stay connected until the answer has come

    out, exit_code = b"", None
    for answer in stub.Attach(requests(), timeout=30):
        part = answer.WhichOneof("part")
        if part == "stdout":
            out += answer.stdout
        elif part == "exit":
            exit_code = answer.exit.code
    assert out == b"got:hello\n" and exit_code == 0
    stub.Remove(c_pb.RemoveContainerRequest(container="talk"))


def test_logs_are_relayed(stub) -> None:
    create(stub, "chatty", "sh", "-c", "echo out; echo err >&2; sleep 30")
    stub.Start(c_pb.StartContainerRequest(container="chatty"))

    def logged() -> list[c_pb.LogEntry] | None:
        entries = list(stub.Logs(c_pb.LogsRequest(container="chatty", stdout=True, stderr=True)))
        return entries if len(entries) == 2 else None
    entries = wait_until(logged, 20, what="two log lines")
    assert sorted((e.stream, e.data) for e in entries) == [
        (c_pb.STREAM_STDOUT, b"out\n"), (c_pb.STREAM_STDERR, b"err\n")]
    stub.Remove(c_pb.RemoveContainerRequest(container="chatty", force=True))


def test_exec_is_relayed(stub) -> None:
    create(stub, "busy", "sleep", "30")
    stub.Start(c_pb.StartContainerRequest(container="busy"))

    def exec_requests() -> Iterator[c_pb.ExecRequest]:
        yield c_pb.ExecRequest(options=c_pb.ExecOptions(container="busy", cmd=["echo", "inside"]))

    out, code = b"", None
    for answer in stub.Exec(exec_requests(), timeout=30):
        if answer.WhichOneof("part") == "stdout":
            out += answer.stdout
        elif answer.WhichOneof("part") == "exit":
            code = answer.exit.code
    assert (out, code) == (b"inside\n", 0)
    stub.Remove(c_pb.RemoveContainerRequest(container="busy", force=True))


def test_rename_and_info_counts(cluster, stub) -> None:
    made = create(stub, "before", "sleep", "30")
    stub.Start(c_pb.StartContainerRequest(container="before"))
    renamed = stub.Rename(c_pb.RenameContainerRequest(container="before", name="after"))
    assert renamed.name == "after" and inspect(stub, "after").id == made.id
    assert fails(inspect, stub, "before").code() == grpc.StatusCode.NOT_FOUND
    with grpc.insecure_channel(cluster.address) as channel:
        info = system_pb2_grpc.SystemStub(channel).Info(system_pb2.InfoRequest())
    listed = stub.List(c_pb.ListContainersRequest(all=True)).containers
    assert info.containers == len(listed) and info.containers_running >= 1
    port = cluster.controller.metrics_port
    wait_until(lambda: value(scrape(port), "kran_cluster_containers", status="running"),
               10, what="kran_cluster_containers{status=running}")
    assert value(scrape(port), "kran_placement_seconds_count") >= 1
    stub.Remove(c_pb.RemoveContainerRequest(container="after", force=True))


def test_prune(stub) -> None:
    create(stub, "stays", "sleep", "30")
    stub.Start(c_pb.StartContainerRequest(container="stays"))
    pruned_one = create(stub, "pruned", "true")
    reply = stub.Prune(c_pb.PruneContainersRequest())
    assert pruned_one.id in reply.deleted
    names = [x.name for x in stub.List(c_pb.ListContainersRequest(all=True)).containers]
    assert "stays" in names and "pruned" not in names
    stub.Remove(c_pb.RemoveContainerRequest(container="stays", force=True))


def test_an_agent_restart_keeps_the_states(cluster, stub) -> None:
    made = create(stub, "survivor", "sleep", "60")
    stub.Start(c_pb.StartContainerRequest(container="survivor"))
    stopped_early = create(stub, "idle", "true")
    assert cluster.agent.stop() == 0  # its containers keep running
    cluster.start_agent()
    cluster.wait_status("Ready")
    time.sleep(2)  # the agent's full report has arrived by now
    shown = inspect(stub, "survivor")
    assert (shown.state.status, shown.state.error) == ("running", "")
    assert inspect(stub, stopped_early.id).state.status == "created"
    stopped = stub.Stop(c_pb.StopContainerRequest(container=made.id, timeout=1, timeout_set=True))
    assert stopped.state.status == "exited"
    stub.Remove(c_pb.RemoveContainerRequest(container="survivor"))
    stub.Remove(c_pb.RemoveContainerRequest(container="idle"))
