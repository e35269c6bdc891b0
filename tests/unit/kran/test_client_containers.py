"""The containers SDK: config from docker-py's keywords, and the calls it makes.

The servicer here answers from memory, served in-process by kran.server; what
is tested is the SDK's side: requests it builds, streams it sends and reads,
the models it returns and the errors it raises.
"""

from __future__ import annotations

import io
import tarfile

import pytest

from kran import errors
from kran.api.v1 import containers_pb2 as pb
from kran.api.v1 import containers_pb2_grpc, images_pb2
from kran.client import Client, ContainerError
from kran.client.archive import GO_MODE_DIR, chunked_tar, is_dir
from kran.client.config import (container_config, memory_bytes, nano_cpus,
                                parse_restart_policy)
from tests.servers import serving

ID = "a" * 64


# -- ContainerConfig from keywords ---------------------------------------------------------

@pytest.mark.parametrize("value, size", [
    (0, 0), (1024, 1024), ("100", 100), ("100b", 100), ("4k", 4096), ("64m", 64 << 20),
    ("1g", 1 << 30), ("1.5g", 3 << 29), ("512MiB", 512 << 20), ("2 GB", 2 << 30)])
def test_memory_sizes_as_docker_reads_them(value, size):
    assert memory_bytes(value) == size


@pytest.mark.parametrize("value", ["x", "12q", "-1m", "m", ""])
def test_memory_refused_with_dockers_words(value):
    if value == "":
        assert memory_bytes(value) == 0
        return
    with pytest.raises(errors.InvalidArgument, match=f"invalid size: '{value}'"):
        memory_bytes(value)


@pytest.mark.parametrize("value, nano", [("1", 10**9), ("1.5", 1_500_000_000), ("0.001", 10**6),
                                         ("0.000000001", 1), (2, 2 * 10**9)])
def test_cpus_to_nano_cpus(value, nano):
    assert nano_cpus(value) == nano


def test_cpus_refused():
    with pytest.raises(errors.InvalidArgument, match="failed to parse abc as a rational number"):
        nano_cpus("abc")
    with pytest.raises(errors.InvalidArgument, match="value is too precise"):
        nano_cpus("0.0000000001")


@pytest.mark.parametrize("text, name, count", [
    ("", "", 0), ("no", "no", 0), ("always", "always", 0), ("unless-stopped", "unless-stopped", 0),
    ("on-failure", "on-failure", 0), ("on-failure:5", "on-failure", 5)])
def test_restart_policies(text, name, count):
    policy = parse_restart_policy(text)
    assert (policy.name, policy.maximum_retry_count) == (name, count)


@pytest.mark.parametrize("text, message", [
    (":3", "no policy provided before colon"),
    ("on-failure:x", "maximum retry count must be an integer"),
    ("always:2", "maximum retry count can only be used with 'on-failure'"),
    ("sometimes", "unknown policy 'sometimes'"),
    ("on-failure:-1", "maximum retry count cannot be negative")])
def test_restart_policies_refused(text, message):
    with pytest.raises(errors.InvalidArgument, match=message):
        parse_restart_policy(text)


def test_config_from_docker_py_keywords():
    config = container_config(
        "busybox", "sh -c 'echo hi'", environment={"A": "1", "B": None}, labels=["x=1", "y"],
        mem_limit="128m", nano_cpus=500_000_000, pids_limit=-1, working_dir="/tmp",
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3}, auto_remove=True,
        tty=True, stdin_open=True, entrypoint="")
    assert list(config.cmd) == ["sh", "-c", "echo hi"]
    assert list(config.env) == ["A=1", "B"]
    assert dict(config.labels) == {"x": "1", "y": ""}
    assert config.memory_bytes == 128 << 20 and config.nano_cpus == 500_000_000
    assert config.pids_limit == 0  # negative means unlimited, as Docker
    assert config.restart_policy.name == "on-failure"
    assert config.restart_policy.maximum_retry_count == 3
    assert config.auto_remove and config.tty and config.open_stdin
    assert config.entrypoint_set and list(config.entrypoint) == []
    assert not container_config("busybox").entrypoint_set


def test_config_refuses_unknown_keywords_and_bad_values():
    with pytest.raises(TypeError, match="volumes"):
        container_config("busybox", volumes=["/x"])
    with pytest.raises(errors.InvalidArgument, match="empty name"):
        container_config("busybox", labels=["=v"])
    with pytest.raises(errors.InvalidArgument, match="invalid environment variable"):
        container_config("busybox", environment=["=v"])


# -- the SDK against a served fake ---------------------------------------------------------

def _container(name="web", status="running", **config):
    return pb.Container(id=ID, name=name, node_id="n1", node_name="node-1",
                        image_id="sha256:" + "e" * 64, path="sh", args=["-c", "x"],
                        config=pb.ContainerConfig(image="busybox", **config),
                        state=pb.ContainerState(status=status))


def _tar(entries):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Containers(containers_pb2_grpc.ContainersServicer):
    """Remembers requests; runs no process. Exit code of a run: the first cmd word's length."""

    def __init__(self):
        self.seen = {}
        self.exit_code = 0

    async def Create(self, request, context):
        self.seen["create"] = request
        if request.config.image == "nosuch":
            raise errors.NotFound("No such image: nosuch:latest")
        return _container(name=request.name or "made_up", status="created",
                          cmd=request.config.cmd, auto_remove=request.config.auto_remove)

    async def Start(self, request, context):
        self.seen["start"] = request
        return _container()

    async def Stop(self, request, context):
        self.seen["stop"] = request
        return _container(status="exited")

    async def Remove(self, request, context):
        self.seen["remove"] = request
        return pb.RemoveContainerResponse()

    async def Inspect(self, request, context):
        if request.container not in (ID, ID[:12], "web"):
            raise errors.NotFound(f"No such container: {request.container}")
        return _container()

    async def List(self, request, context):
        self.seen["list"] = request
        return pb.ListContainersResponse(containers=[_container()])

    async def Wait(self, request, context):
        return pb.WaitContainerResponse(status_code=self.exit_code)

    async def Attach(self, request_iterator, context):
        requests = aiter(request_iterator)
        first = await anext(requests)
        self.seen["attach"] = first.options
        if first.options.stdin:
            async for request in requests:
                if request.WhichOneof("part") == "stdin":
                    if request.stdin == b"\x10\x11":
                        yield pb.AttachResponse(detached=True)
                        return
                    yield pb.AttachResponse(stdout=request.stdin.upper())
                elif request.WhichOneof("part") == "close_stdin":
                    break
        yield pb.AttachResponse(stdout=b"out\n")
        yield pb.AttachResponse(stderr=b"err\n")
        yield pb.AttachResponse(exit=pb.ExitStatus(code=self.exit_code))

    async def Exec(self, request_iterator, context):
        requests = aiter(request_iterator)
        first = await anext(requests)
        self.seen["exec"] = first.options
        if first.options.detach:
            yield pb.ExecResponse(started=42)
            return
        yield pb.ExecResponse(stdout=" ".join(first.options.cmd).encode())
        yield pb.ExecResponse(stderr=b"warn")
        yield pb.ExecResponse(exit=pb.ExitStatus(code=3))

    async def Logs(self, request, context):
        self.seen["logs"] = request
        for stream, data, second in ((pb.STREAM_STDOUT, b"a\n", 1), (pb.STREAM_STDERR, b"b\n", 2)):
            entry = pb.LogEntry(stream=stream, data=data)
            entry.time.seconds = 1_700_000_000 + second
            yield entry

    async def Diff(self, request, context):
        return pb.DiffResponse(changes=[pb.Change(path="/etc", kind="C"),
                                        pb.Change(path="/etc/x", kind="A"),
                                        pb.Change(path="/tmp/y", kind="D")])

    async def Commit(self, request, context):
        self.seen["commit"] = request
        return images_pb2.Image(id="sha256:" + "f" * 64, repo_tags=[request.reference])

    async def CopyFrom(self, request, context):
        if request.path == "/missing":
            raise errors.NotFound("Could not find the file /missing in container web")
        data = _tar([("etc", None), ("etc/hosts", b"127.0.0.1 localhost\n")])
        for start in range(0, len(data), 700):
            yield images_pb2.DataChunk(data=data[start:start + 700])

    async def CopyTo(self, request_iterator, context):
        parts = [r async for r in request_iterator]
        self.seen["copyto"] = parts
        return pb.CopyToResponse()

    async def Stats(self, request, context):
        for n in range(1, 4):
            yield pb.ContainerStats(id=ID, name="web", cpu_usage_ns=n * 100,
                                    system_cpu_ns=n * 1000, online_cpus=1)



@pytest.fixture(scope="module")
def served():
    """A kran.server with the fake Containers service; yields (address, servicer)."""
    servicer = Containers()
    with serving([(containers_pb2_grpc.add_ContainersServicer_to_server, servicer,
                   "kran.api.v1.Containers")]) as address:
        yield address, servicer


@pytest.fixture
def client(served):
    served[1].exit_code = 0
    with Client(served[0]) as c:
        yield c


def test_create_sends_config_and_returns_inspect_shaped_model(client, served):
    container = client.containers.create("busybox", ["echo", "hi"], name="web", node="node-1",
                                         environment=["A=1"], mem_limit="64m")
    request = served[1].seen["create"]
    assert request.name == "web" and request.node == "node-1"
    assert request.config.memory_bytes == 64 << 20 and list(request.config.env) == ["A=1"]
    assert container.id == ID and container.short_id == ID[:12]
    assert container.name == "web" and container.status == "created"
    assert container.attrs["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert container.node_name == "node-1"


def test_create_unknown_image_is_not_found(client):
    with pytest.raises(errors.NotFound, match="No such image"):
        client.containers.create("nosuch")


def test_run_attaches_with_start_and_returns_stdout(client, served):
    assert client.containers.run("busybox", "echo hi") == b"out\n"
    options = served[1].seen["attach"]
    assert options.start and options.stdout and options.stderr and not options.stdin
    assert client.containers.run("busybox", "x", stderr=True) == b"out\nerr\n"
    assert list(client.containers.run("busybox", "x", stream=True)) == [b"out\n"]


def test_run_nonzero_exit_raises_container_error_with_stderr(client, served):
    served[1].exit_code = 3
    with pytest.raises(ContainerError) as raised:
        client.containers.run("busybox", "false", remove=True)
    assert raised.value.exit_status == 3 and raised.value.stderr == b"err\n"
    assert raised.value.image == "busybox" and raised.value.command == "false"
    assert "returned non-zero exit status 3" in str(raised.value)
    assert served[1].seen["remove"].force


def test_run_detached_starts_and_returns_the_container(client, served):
    container = client.containers.run("busybox", "sleep 9", detach=True)
    assert served[1].seen["start"].container == ID
    assert container.status == "running"


def test_get_list_and_filters(client, served):
    assert client.containers.get("web").name == "web"
    with pytest.raises(errors.NotFound, match="No such container: nope"):
        client.containers.get("nope")
    [listed] = client.containers.list(filters={"status": "exited", "label": ["a", "b=c"]})
    request = served[1].seen["list"]
    assert request.all, "a status filter shows stopped containers too"
    assert list(request.filters["label"].values) == ["a", "b=c"]
    client.containers.list(limit=2)
    assert served[1].seen["list"].all and served[1].seen["list"].limit == 2
    assert listed.attrs["Name"] == "/web"


def test_stop_with_and_without_timeout(client, served):
    container = client.containers.get("web")
    container.stop()
    assert not served[1].seen["stop"].timeout_set
    container.stop(timeout=0)
    assert served[1].seen["stop"].timeout_set and served[1].seen["stop"].timeout == 0
    assert container.status == "exited"


def test_wait_shape(client, served):
    served[1].exit_code = 7
    assert client.containers.get("web").wait() == {"StatusCode": 7, "Error": None}


def test_attach_socket_sends_stdin_and_reads_output(client):
    session = client.containers.get("web").attach_socket(stdin=True)
    session.send(b"hello")
    session.close_stdin()
    out, err = session.read_all()
    assert out == b"HELLOout\n" and err == b"err\n" and session.exit_code == 0


def test_attach_socket_detach(client):
    session = client.containers.get("web").attach_socket(stdin=True,
                                                          detach_keys="ctrl-p,ctrl-q")
    session.send(b"\x10\x11")
    assert session.read_all() == (b"", b"")
    assert session.detached and session.exit_code is None


def test_exec_run(client, served):
    container = client.containers.get("web")
    code, output = container.exec_run("ls -l /", environment={"X": "1"}, workdir="/tmp")
    assert (code, output) == (3, b"ls -l /warn")
    options = served[1].seen["exec"]
    assert list(options.cmd) == ["ls", "-l", "/"] and list(options.env) == ["X=1"]
    assert options.working_dir == "/tmp"
    assert container.exec_run(["ls"], demux=True) == (3, (b"ls", b"warn"))
    assert container.exec_run(["ls"], detach=True) == (None, b"")


def test_logs_bytes_timestamps_and_lines(client, served):
    container = client.containers.get("web")
    assert container.logs() == b"a\nb\n"
    assert container.logs(timestamps=True, since=1_700_000_000.5, tail=10) == \
        b"2023-11-14T22:13:21Z a\n2023-11-14T22:13:22Z b\n"
    request = served[1].seen["logs"]
    assert request.tail == "10" and request.since.seconds == 1_700_000_000
    assert request.since.nanos == 500_000_000
    assert [line.stream for line in container.log_lines()] == ["stdout", "stderr"]


def test_diff_commit_and_stats(client, served):
    container = client.containers.get("web")
    assert container.diff() == [{"Path": "/etc", "Kind": 0}, {"Path": "/etc/x", "Kind": 1},
                                {"Path": "/tmp/y", "Kind": 2}]
    image = container.commit("app", "v2", message="m", author="me", changes="CMD [\"sh\"]")
    request = served[1].seen["commit"]
    assert request.reference == "app:v2" and list(request.changes) == ['CMD ["sh"]']
    assert image.id == "sha256:" + "f" * 64
    samples = list(container.stats())
    assert samples[1]["precpu_stats"]["cpu_usage"]["total_usage"] == 100
    assert container.stats(stream=False)["name"] == "/web"


def test_get_archive_gives_docker_stat_and_the_whole_tar(client):
    chunks, stat = client.containers.get("web").get_archive("/etc")
    assert stat["name"] == "etc" and is_dir(stat) and stat["mode"] == GO_MODE_DIR | 0o755
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert tar.getnames() == ["etc", "etc/hosts"]
    with pytest.raises(errors.NotFound):
        client.containers.get("web").get_archive("/missing")


def test_put_archive_sends_header_then_chunks(client, served):
    assert client.containers.get("web").put_archive("/tmp", b"x" * 10)
    parts = served[1].seen["copyto"]
    assert parts[0].header.path == "/tmp" and parts[0].header.container == ID
    assert b"".join(p.chunk for p in parts[1:]) == b"x" * 10


def test_chunked_tar_takes_bytes_files_and_iterables():
    wrap = lambda data: data  # noqa: E731
    assert list(chunked_tar("h", b"ab", wrap)) == ["h", b"ab"]
    assert list(chunked_tar("h", io.BytesIO(b"ab"), wrap)) == ["h", b"ab"]
    assert list(chunked_tar("h", [b"a", b"b"], wrap)) == ["h", b"a", b"b"]
