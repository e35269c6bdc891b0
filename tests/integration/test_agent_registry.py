"""Pull, push, login and search of real kran-agents against Debian's docker-registry on loopback.

One controller and two agents: node-a holds the images and pushes them,
node-b starts empty and pulls. Registries: a plain-HTTP one (reached over
HTTP because it is on loopback and does not speak TLS), and one with TLS
from a CA this test makes and htpasswd users. Calls go to the agents'
Images services, and through the controller where its forwarding is the
point.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from kran.api.v1 import images_pb2 as pb
from kran.api.v1 import images_pb2_grpc, nodes_pb2, nodes_pb2_grpc
from tests.integration.distkit import Proxy, RegistryProcess, image_archive, make_ca
from tests.procs import BIN, Proc, Processes, free_port, port_open, unmount_leftovers, wait_until

TIMEOUT = 120
USER, PASSWORD = "carol", "s3cret-pw"


@dataclass
class Node:
    """A kran-agent process, its argv (to start it again) and an Images stub."""

    name: str
    state: Path
    argv: list[str]
    port: int
    proc: Proc
    images: images_pb2_grpc.ImagesStub


class Lab:
    """A controller, two agents and the registries."""

    def __init__(self, workdir: Path, processes: Processes) -> None:
        self.workdir = workdir
        self.processes = processes
        self.controller = self.processes.controller(workdir / "controller")
        self.plain = RegistryProcess(self.processes, workdir / "plain")
        ca, cert, key = make_ca(workdir / "ca")
        self.ca = ca
        self.secure = RegistryProcess(self.processes, workdir / "secure", tls=(cert, key), users={USER: PASSWORD})
        self.certs = {"node-a": workdir / "certs-a", "node-b": workdir / "certs-b"}
        for directory in self.certs.values():
            directory.mkdir()
        (self.certs["node-a"] / self.secure.host).mkdir()
        shutil.copy(ca, self.certs["node-a"] / self.secure.host / "ca.crt")
        self.nodes = {name: self._agent(name) for name in ("node-a", "node-b")}
        channel = grpc.insecure_channel(self.controller.address)
        self.cluster = images_pb2_grpc.ImagesStub(channel)

    def _agent(self, name: str) -> Node:
        port = free_port()
        state = self.workdir / name
        argv = [str(BIN / "kran-agent"), f"--controller={self.controller.address}", f"--listen=127.0.0.1:{port}",
                "--metrics-addr=none", f"--state-dir={state}", f"--hostname={name}",
                f"--certs-dir={self.certs[name]}", "--max-concurrent-downloads=3"]
        return Node(name, state, argv, port, self._start(argv, port), self._stub(port))

    def _start(self, argv: list[str], port: int) -> Proc:
        proc = self.processes.start(argv, "agent", env={"KRAN_AGENT_CGROUP_PARENT": f"kran-reg-{os.getpid()}"})

        def serving() -> bool:
            if not proc.alive():
                raise AssertionError(f"kran-agent exited:\n{proc.output()}")
            return port_open(port)
        wait_until(serving, 30, what=f"kran-agent on {port}")
        return proc

    @staticmethod
    def _stub(port: int) -> images_pb2_grpc.ImagesStub:
        return images_pb2_grpc.ImagesStub(grpc.insecure_channel(f"127.0.0.1:{port}"))

    def restart(self, node: Node) -> None:
        """SIGKILL the agent and start it again on the same state and port."""
        node.proc.kill()
        node.proc = self._start(node.argv, node.port)
        node.images = self._stub(node.port)

    def wait_ready(self) -> None:
        """Until the controller sees both nodes Ready."""
        stub = nodes_pb2_grpc.NodesStub(grpc.insecure_channel(self.controller.address))

        def ready() -> bool:
            nodes = stub.List(nodes_pb2.ListNodesRequest(), timeout=10).nodes
            return sum(n.status == nodes_pb2.NODE_STATUS_READY for n in nodes) == 2
        wait_until(ready, 30, 0.2, "both nodes Ready")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Iterator[Lab]:
    workdir = tmp_path_factory.mktemp("registry-lab")
    processes = Processes(workdir)
    try:
        lab = Lab(workdir, processes)
        header = pb.ImportImageRequest(header=pb.ImportHeader(reference=f"{lab.plain.host}/busybox:latest",
                                                              changes=['CMD ["sh"]']))
        lab.nodes["node-a"].images.Import(iter([header, pb.ImportImageRequest(chunk=busybox_tar.read_bytes())]),
                                          timeout=TIMEOUT)
        yield lab
    finally:
        processes.cleanup()
        left = unmount_leftovers(workdir)
        assert not left, f"mounts left behind: {left}"


def lines(stream: Iterator[pb.Progress]) -> list[str]:
    """Progress messages as docker prints them without a terminal (byte counts dropped)."""
    return [f"{p.id}: {p.status}" if p.id else p.status for p in stream]


def pull(node: Node, ref: str, **fields) -> list[str]:
    return lines(node.images.Pull(pb.PullImageRequest(reference=ref, **fields), timeout=TIMEOUT))


def push(node: Node, ref: str, **fields) -> list[str]:
    return lines(node.images.Push(pb.PushImageRequest(reference=ref, **fields), timeout=TIMEOUT))


def inspect(node: Node, ref: str) -> pb.ImageDetail:
    return node.images.Inspect(pb.InspectImageRequest(reference=ref), timeout=TIMEOUT)


def failure(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def store_files(node: Node) -> dict[str, list[str]]:
    """What the node's image store holds on disk, by area."""
    root = node.state / "images"
    return {area: sorted(p.name for p in (root / sub).iterdir() if not p.name.startswith("."))
            for area, sub in (("blobs", "blobs/sha256"), ("layers", "layers"), ("ingest", "ingest"))}


def load(node: Node, archive: bytes) -> None:
    node.images.Load(iter([pb.LoadImagesRequest(header=pb.LoadHeader()), pb.LoadImagesRequest(chunk=archive)]),
                     timeout=TIMEOUT)


def remove_all(node: Node) -> None:
    for image in node.images.List(pb.ListImagesRequest(), timeout=TIMEOUT).images:
        node.images.Remove(pb.RemoveImageRequest(reference=image.id, force=True), timeout=TIMEOUT)


def test_push_then_pull_into_an_empty_store(lab: Lab) -> None:
    a, b = lab.nodes["node-a"], lab.nodes["node-b"]
    ref = f"{lab.plain.host}/busybox:latest"
    out = push(a, ref)
    assert out[0] == f"The push refers to repository [{lab.plain.host}/busybox]"
    layer = inspect(a, ref).layers[0].diff_id.removeprefix("sha256:")[:12]
    assert out[1:] == [f"{layer}: Preparing", f"{layer}: Pushing", f"{layer}: Pushing", f"{layer}: Pushed",
                       out[-1]]
    assert out[-1].startswith("latest: digest: sha256:") and " size: " in out[-1]
    digest = out[-1].split()[2]
    assert lab.plain.requests("PATCH", "/v2/busybox/blobs/uploads/"), "the layer went up in PATCH chunks"

    pulled = pull(b, ref)
    blob = pulled[1].split(":")[0]
    assert pulled[0] == "latest: Pulling from busybox"
    assert [line for line in pulled if line.startswith(blob)][0] == f"{blob}: Pulling fs layer"
    for status in ("Downloading", "Verifying Checksum", "Download complete", "Extracting", "Pull complete"):
        assert f"{blob}: {status}" in pulled, pulled
    assert pulled[-2:] == [f"Digest: {digest}", f"Status: Downloaded newer image for {ref}"]
    there, here = inspect(a, ref), inspect(b, ref)
    assert here.image.id == there.image.id
    assert list(here.image.repo_digests) == [f"{lab.plain.host}/busybox@{digest}"]
    assert inspect(b, f"{lab.plain.host}/busybox@{digest}").image.id == here.image.id

    again = pull(b, ref)
    assert again == ["latest: Pulling from busybox", f"{blob}: Already exists", f"Digest: {digest}",
                     f"Status: Image is up to date for {ref}"]
    by_digest = pull(b, f"{lab.plain.host}/busybox@{digest}")
    assert by_digest[-1] == f"Status: Image is up to date for {lab.plain.host}/busybox@{digest}"


def test_push_again_and_to_another_repository(lab: Lab) -> None:
    a = lab.nodes["node-a"]
    ref = f"{lab.plain.host}/busybox:latest"
    first = push(a, ref)
    layer = first[1].split(":")[0]
    assert f"{layer}: Layer already exists" in first
    assert push(a, ref)[-1] == first[-1], "a re-push gives the same digest"
    other = f"{lab.plain.host}/team/tools:1"
    a.images.Tag(pb.TagImageRequest(source=ref, target=other), timeout=TIMEOUT)
    mounted = push(a, other)
    assert f"{layer}: Mounted from busybox" in mounted, mounted
    assert lab.plain.requests("POST", "mount=sha256")


def test_pull_of_a_missing_repository_or_tag(lab: Lab) -> None:
    b = lab.nodes["node-b"]
    err = failure(lambda: pull(b, f"{lab.plain.host}/no-such-repo"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == (f"pull access denied for {lab.plain.host}/no-such-repo, repository does not exist "
                             "or may require 'docker login': denied: requested access to the resource is denied")
    err = failure(lambda: pull(b, f"{lab.plain.host}/busybox:no-such-tag"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == (f"manifest for {lab.plain.host}/busybox:no-such-tag not found: "
                             "manifest unknown: manifest unknown")
    down = f"127.0.0.1:{free_port()}"
    err = failure(lambda: pull(b, f"{down}/busybox"))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert down in err.details() and "connection refused" in err.details()


def test_tls_and_htpasswd(lab: Lab) -> None:
    a, b = lab.nodes["node-a"], lab.nodes["node-b"]
    host = lab.secure.host
    err = failure(lambda: pull(b, f"{host}/private/busybox"))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert "certificate" in err.details() and f"{lab.certs['node-b']}/{host}/ca.crt" in err.details()
    assert f"--insecure-registry {host}" in err.details()

    wrong = pb.RegistryAuth(username=USER, password="nope", server_address=host)
    right = pb.RegistryAuth(username=USER, password=PASSWORD, server_address=host)
    err = failure(lambda: a.images.Login(pb.LoginRequest(auth=wrong), timeout=TIMEOUT))
    assert (err.code(), err.details()) == (grpc.StatusCode.PERMISSION_DENIED, "unauthorized: authentication required")
    assert a.images.Login(pb.LoginRequest(auth=right), timeout=TIMEOUT).status == "Login Succeeded"

    ref = f"{host}/private/busybox:1"
    a.images.Tag(pb.TagImageRequest(source=f"{lab.plain.host}/busybox:latest", target=ref), timeout=TIMEOUT)
    err = failure(lambda: push(a, ref))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "unauthorized" in err.details()
    err = failure(lambda: push(a, ref, auth=wrong))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert push(a, ref, auth=right)[-1].startswith("1: digest: sha256:")

    (lab.certs["node-b"] / host).mkdir()
    shutil.copy(lab.ca, lab.certs["node-b"] / host / "ca.crt")
    err = failure(lambda: pull(b, ref))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "pull access denied" in err.details()
    err = failure(lambda: pull(b, ref, auth=wrong))
    assert (err.code(), err.details()) == (grpc.StatusCode.PERMISSION_DENIED, "unauthorized: authentication required")
    other = pb.RegistryAuth(username=USER, password=PASSWORD, server_address="elsewhere.example:5000")
    err = failure(lambda: pull(b, ref, auth=other))
    assert err.code() == grpc.StatusCode.NOT_FOUND, "credentials for another registry are not sent"
    assert pull(b, ref, auth=right)[-1] == f"Status: Downloaded newer image for {ref}"
    found = b.images.Search(pb.SearchImagesRequest(term=f"{host}/priv", auth=right), timeout=TIMEOUT).results
    assert [r.name for r in found] == [f"{host}/private/busybox"]


def _layers(seed: int, sizes: list[int]) -> list[dict[str, bytes]]:
    return [{f"data/{seed}-{i}.bin": os.urandom(size)} for i, size in enumerate(sizes)]


def test_concurrent_pulls_share_a_layer_download(lab: Lab) -> None:
    a, b = lab.nodes["node-a"], lab.nodes["node-b"]
    base = {"base/big.bin": os.urandom(6 << 20)}
    one, two = f"{lab.plain.host}/shared/one:1", f"{lab.plain.host}/shared/two:1"
    load(a, image_archive(one, [base, {"one.bin": os.urandom(300_000)}]))
    load(a, image_archive(two, [base, {"two.bin": os.urandom(300_000)}]))
    push(a, one)
    push(a, two)
    base_diff = inspect(a, one).layers[0].diff_id
    proxy = Proxy(lab.plain.port, rate=4 << 20)
    try:
        via = f"127.0.0.1:{proxy.port}"
        results: dict[str, list[str] | Exception] = {}

        def run(ref: str) -> None:
            try:
                results[ref] = pull(b, ref)
            except Exception as exc:  # noqa: BLE001 - reported below
                results[ref] = exc
        threads = [threading.Thread(target=run, args=(f"{via}/shared/{n}:1",)) for n in ("one", "two")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
    finally:
        proxy.close()
    assert all(isinstance(r, list) for r in results.values()), results
    blob = [line for line in results[f"{via}/shared/one:1"] if line.endswith("Pull complete")][0].split(":")[0]
    fetched = [line for line in lab.plain.requests("GET", f"/blobs/sha256:{blob}") if '" 200' in line]
    assert len(fetched) == 1, fetched
    assert inspect(b, f"{via}/shared/two:1").layers[0].diff_id == base_diff


def test_pull_cut_off_leaves_nothing_and_completes_later(lab: Lab) -> None:
    a, b = lab.nodes["node-a"], lab.nodes["node-b"]
    remove_all(b)
    ref = f"{lab.plain.host}/big/image:1"
    load(a, image_archive(ref, _layers(7, [3 << 20, 3 << 20, 3 << 20])))
    push(a, ref)
    slow = Proxy(lab.plain.port, rate=1 << 20)
    try:
        via = f"127.0.0.1:{slow.port}/big/image:1"
        stream = b.images.Pull(pb.PullImageRequest(reference=via), timeout=TIMEOUT)
        for line in stream:
            if line.status == "Downloading" and line.current > 0:
                break
        lab.restart(b)
        stream.cancel()
    finally:
        slow.close()
    assert not b.images.List(pb.ListImagesRequest(), timeout=TIMEOUT).images
    assert store_files(b) == {"blobs": [], "layers": [], "ingest": []}

    dropping = Proxy(lab.plain.port, drop_after=2 << 20)
    try:
        out = pull(b, f"127.0.0.1:{dropping.port}/big/image:1")
    finally:
        dropping.close()
    assert dropping.dropped, "the proxy cut a download short"
    assert out[-1].startswith("Status: Downloaded newer image for")
    assert inspect(b, f"127.0.0.1:{dropping.port}/big/image:1").image.id == inspect(a, ref).image.id


def test_a_corrupt_blob_is_refused_and_nothing_stored(lab: Lab) -> None:
    a, b = lab.nodes["node-a"], lab.nodes["node-b"]
    remove_all(b)
    ref = f"{lab.plain.host}/corrupt/image:1"
    load(a, image_archive(ref, _layers(9, [200_000])))
    out = push(a, ref)
    layer_blob = [line for line in lab.plain.requests("PUT", "/corrupt/image/blobs/uploads/")][-2]
    digest = "sha256:" + layer_blob.split("digest=sha256%3A")[1][:64]
    path = lab.plain.blob_file(digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    err = failure(lambda: pull(b, ref))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "digest mismatch" in err.details() or "corrupt" in err.details(), err.details()
    assert not b.images.List(pb.ListImagesRequest(), timeout=TIMEOUT).images
    assert store_files(b)["blobs"] == [] and store_files(b)["layers"] == []
    assert out[-1].startswith("1: digest:")


def test_through_the_controller(lab: Lab) -> None:
    lab.wait_ready()
    ref = f"{lab.plain.host}/busybox:latest"
    out = list(lab.cluster.Push(pb.PushImageRequest(reference=ref), timeout=TIMEOUT))
    assert {p.node_name for p in out} == {"node-a"}
    both = list(lab.cluster.Pull(pb.PullImageRequest(reference=ref, all_nodes=True), timeout=TIMEOUT))
    finals = {p.node_name: p.status for p in both if p.status.startswith("Status:")}
    assert finals == {"node-a": f"Status: Image is up to date for {ref}",
                      "node-b": finals.get("node-b", "")} and finals["node-b"].endswith(ref)
    one = list(lab.cluster.Pull(pb.PullImageRequest(reference=ref, node="node-b"), timeout=TIMEOUT))
    assert {p.node_name for p in one} == {"node-b"}
    found = lab.cluster.Search(pb.SearchImagesRequest(term=f"{lab.plain.host}/busy"), timeout=TIMEOUT).results
    assert [r.name for r in found] == [f"{lab.plain.host}/busybox"]
    assert lab.cluster.Login(pb.LoginRequest(auth=pb.RegistryAuth(
        username="x", password="y", server_address=lab.plain.host)), timeout=TIMEOUT).status == "Login Succeeded"
