"""pull, push, login, logout, search and run --pull through the installed `kran`,
against a real cluster and Debian's docker-registry on loopback.

The cluster's agent uses the test registry as its docker.io mirror, so
`kran run hello-world` with no local image pulls it from there, as in the
seeds. A second registry wants htpasswd logins.
"""

from __future__ import annotations

import base64
import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from kran import errors
from kran.client import Client, CredentialStore
from tests.integration.conftest import Cluster, running_cluster, table
from tests.integration.registrykit import Registry, start_registry
from tests.procs import Processes, free_port

USER, PASSWORD = "alice", "wonderland-7"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry that wants USER/PASSWORD (htpasswd)."""
    workdir = tmp_path_factory.mktemp("auth-registry")
    processes = Processes(workdir)
    try:
        yield start_registry(processes, workdir, users={USER: PASSWORD})
    finally:
        processes.cleanup()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[Cluster]:
    """A one-node cluster whose agent takes docker.io images from `registry`; its own KRAN_CONFIG."""
    workdir = tmp_path_factory.mktemp("cluster")
    with running_cluster(workdir, agent_args=registry.mirror_args) as cluster:
        config = workdir / "kran-config"
        cluster.env["KRAN_CONFIG"] = str(config)
        yield cluster


@pytest.fixture(scope="module")
def config_file(cluster: Cluster) -> Path:
    return Path(cluster.env["KRAN_CONFIG"]) / "config.json"


def image_id(cluster: Cluster, ref: str) -> str:
    return cluster.ok("image", "inspect", "-f", "{{.Id}}", ref).strip()


def import_as(cluster: Cluster, tarball: Path, ref: str, cmd: str) -> str:
    """Import a rootfs tarball as ref (its only reference); the image id."""
    cluster.ok("import", str(tarball), ref, "-c", f"CMD {cmd}")
    return image_id(cluster, ref)


def lines_of(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def test_push_then_pull_back_the_same_image(cluster, registry, busybox_tar):
    ref = f"{registry.address}/busybox:1"
    pushed_id = import_as(cluster, busybox_tar, ref, '["sh"]')

    push = cluster.kran("push", ref)
    assert push.code == 0, push.err
    out = lines_of(push.out)
    assert out[0] == f"The push refers to repository [{registry.address}/busybox]"
    assert any(re.fullmatch(r"[0-9a-f]{12}: Pushed", line) for line in out), push.out
    digest = registry.manifest_digest("busybox", "1")
    assert DIGEST.fullmatch(digest)
    assert re.fullmatch(rf"1: digest: {digest} size: \d+", out[-1]), push.out
    assert registry.tags("busybox") == ["1"]

    assert "Deleted: " + pushed_id in cluster.ok("rmi", ref)
    pull = cluster.kran("pull", ref)
    assert pull.code == 0, pull.err
    out = lines_of(pull.out)
    assert out[0] == "1: Pulling from busybox"
    layer_lines = [line for line in out if re.match(r"[0-9a-f]{12}: ", line)]
    assert any(line.endswith(": Pulling fs layer") for line in layer_lines), pull.out
    assert any(line.endswith(": Pull complete") for line in layer_lines), pull.out
    assert not [line for line in out if "[" in line or "\x1b" in line], "bars without a terminal"
    assert out[-3:] == [f"Digest: {digest}", f"Status: Downloaded newer image for {ref}", ref]
    assert image_id(cluster, ref) == pushed_id
    detail = json.loads(cluster.ok("image", "inspect", ref))[0]
    assert f"{registry.address}/busybox@{digest}" in detail["RepoDigests"]

    again = cluster.kran("pull", ref)
    assert again.code == 0, again.err
    assert lines_of(again.out)[-2:] == [f"Status: Image is up to date for {ref}", ref]


def test_quiet_pull_and_push_print_only_the_reference(cluster, registry):
    ref = f"{registry.address}/busybox:1"
    assert cluster.ok("pull", "-q", ref) == f"{ref}\n"
    assert cluster.ok("push", "-q", ref) == f"{ref}\n"
    untagged = f"{registry.address}/busybox"
    cluster.ok("tag", ref, untagged)
    result = cluster.kran("push", untagged)
    assert result.code == 0, result.err
    assert lines_of(result.out)[0] == "Using default tag: latest"
    assert registry.tags("busybox") == ["1", "latest"]
    cluster.ok("rmi", untagged)


def test_pull_on_a_terminal_rewrites_one_line_per_layer(cluster, registry):
    ref = f"{registry.address}/busybox:1"
    cluster.ok("rmi", ref)
    terminal = cluster.terminal("pull", ref)
    try:
        assert terminal.wait(60) == 0, terminal.output
    finally:
        terminal.close()
    output = terminal.output.decode(errors="replace")
    assert "\x1b[1A" in output and "\x1b[2K" in output
    assert re.search(r"[0-9a-f]{12}: Pull complete", output)
    assert re.search(r"Downloading \[=*>", output), output
    assert output.rstrip().endswith(ref)


def test_run_pulls_a_missing_image_from_the_mirror(cluster, registry, hello_tar):
    # Put hello-world where docker.io's library lives in the mirror, then drop it locally.
    seeded = f"{registry.address}/library/hello-world:latest"
    import_as(cluster, hello_tar, "hello-world:latest", '["/hello"]')
    cluster.ok("tag", "hello-world", seeded)
    cluster.ok("push", "-q", seeded)
    cluster.ok("rmi", seeded, "hello-world")

    run = cluster.kran("run", "--rm", "hello-world")
    assert run.code == 0, run.err
    assert "Hello from kran!" in run.out
    err = lines_of(run.err)
    assert err[0] == "Unable to find image 'hello-world:latest' locally"
    assert err[1] == "latest: Pulling from library/hello-world"
    assert any(line.endswith(": Pull complete") for line in err), run.err
    assert DIGEST.fullmatch(err[-2].removeprefix("Digest: ")), run.err
    assert err[-1] == "Status: Downloaded newer image for hello-world:latest"
    assert cluster.table("images", "hello-world")[1][0]["TAG"] == "latest"

    always = cluster.kran("run", "--rm", "--pull", "always", "hello-world")
    assert always.code == 0, always.err
    assert "Unable to find image" not in always.err
    assert "Status: Image is up to date for hello-world:latest" in always.err
    assert "Hello from kran!" in always.out

    cluster.ok("rmi", "hello-world")
    never = cluster.kran("run", "--rm", "--pull", "never", "hello-world")
    assert never.code == 125
    assert "Unable to find image" not in never.err
    assert "No such image" in never.err

    quiet = cluster.kran("create", "-q", "--name", "quietly", "hello-world")
    assert quiet.code == 0, quiet.err
    assert quiet.err == "" and re.fullmatch(r"[0-9a-f]{64}\n", quiet.out)
    cluster.ok("rm", "quietly")


def test_pull_errors_are_dockers(cluster, registry):
    unknown_repo = cluster.kran("pull", f"{registry.address}/no-such-repo")
    assert unknown_repo.code == 1
    assert unknown_repo.err.startswith("Error response from daemon: "), unknown_repo.err
    assert "not found" in unknown_repo.err or "does not exist" in unknown_repo.err

    unknown_tag = cluster.kran("pull", f"{registry.address}/busybox:no-such-tag")
    assert unknown_tag.code == 1
    assert "manifest unknown" in unknown_tag.err, unknown_tag.err

    nobody = f"127.0.0.1:{free_port()}"
    down = cluster.kran("pull", f"{nobody}/busybox")
    assert down.code == 1
    assert nobody in down.err, down.err

    bad = cluster.kran("pull", "Not/Valid")
    assert (bad.code, bad.err) == (1, "invalid reference format: repository name must be "
                                      "lowercase\n")
    run_missing = cluster.kran("run", "--rm", f"{registry.address}/no-such-repo")
    assert run_missing.code == 125
    assert run_missing.err.startswith(
        f"Unable to find image '{registry.address}/no-such-repo:latest' locally\n")
    assert "kran: Error response from daemon: " in run_missing.err


def test_search_lists_the_registrys_catalog(cluster, registry):
    header, rows = table(cluster.ok("search", f"{registry.address}/busy"))
    assert header == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    assert any(row["NAME"].endswith("busybox") for row in rows), rows


def test_login_with_htpasswd_then_pull_push_and_logout(cluster, auth_registry, busybox_tar,
                                                       config_file):
    server = auth_registry.address
    ref = f"{server}/private/busybox:1"
    import_as(cluster, busybox_tar, ref, '["sh"]')
    refused = cluster.kran("push", ref)
    assert refused.code == 1
    assert "unauthorized" in refused.err.lower(), refused.err

    wrong = cluster.kran("login", "-u", USER, "-p", "wrong", server)
    assert wrong.code == 1
    assert wrong.err.startswith("WARNING! Using --password via the CLI is insecure. "
                                "Use --password-stdin.\n")
    assert "Error response from daemon: " in wrong.err
    assert "unauthorized" in wrong.err.lower(), wrong.err
    assert not config_file.exists()

    right = cluster.kran("login", "-u", USER, "--password-stdin", server,
                         stdin=f"{PASSWORD}\n".encode())
    assert right.code == 0, right.err
    assert right.out == "Login Succeeded\n"
    assert PASSWORD not in right.out + right.err
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    auths = json.loads(config_file.read_text())["auths"]
    assert base64.b64decode(auths[server]["auth"]).decode() == f"{USER}:{PASSWORD}"

    pushed = cluster.kran("push", ref)
    assert pushed.code == 0, pushed.err
    assert auth_registry.tags("private/busybox", user=USER) == ["1"]
    cluster.ok("rmi", ref)
    pulled = cluster.kran("pull", ref)
    assert pulled.code == 0, pulled.err
    _, rows = table(cluster.ok("search", f"{server}/private"))
    assert [row["NAME"] for row in rows if "private/busybox" in row["NAME"]], rows

    logout = cluster.kran("logout", server)
    assert (logout.code, logout.out) == (0, f"Removing login credentials for {server}\n")
    assert server not in json.loads(config_file.read_text())["auths"]
    assert cluster.ok("logout", server) == f"Not logged in to {server}\n"
    cluster.ok("rmi", ref)
    denied = cluster.kran("pull", ref)
    assert denied.code == 1
    assert "Error response from daemon: " in denied.err


def test_login_on_a_terminal_prompts_without_echo(cluster, auth_registry, config_file):
    server = auth_registry.address
    terminal = cluster.terminal("login", server)
    try:
        terminal.expect(rb"Username: ")
        terminal.send(USER.encode() + b"\r")
        terminal.expect(rb"Password: ")
        terminal.send(PASSWORD.encode() + b"\r")
        terminal.expect(rb"Login Succeeded")
        assert terminal.wait() == 0
    finally:
        terminal.close()
    assert PASSWORD.encode() not in terminal.output
    assert server in json.loads(config_file.read_text())["auths"]
    again = cluster.terminal("login", server)
    try:
        again.expect(rb"Authenticating with existing credentials\.\.\.")
        again.expect(rb"Login Succeeded")
        assert again.wait() == 0
    finally:
        again.close()
    cluster.ok("logout", server)


def test_the_sdk_pulls_pushes_and_logs_in(cluster, registry, auth_registry, tmp_path):
    ref = f"{registry.address}/busybox:1"
    with Client(cluster.address) as client:
        client.credentials = CredentialStore(tmp_path / "config.json")
        lines = list(client.images.pull_progress(ref))
        assert lines[-1] == {"status": f"Status: Image is up to date for {ref}",
                             "node": cluster.hostname}
        image = client.images.pull(ref)
        assert image.id == image_id(cluster, ref)
        with pytest.raises(errors.NotFound, match="manifest unknown"):
            client.images.pull(f"{registry.address}/busybox", tag="no-such-tag")
        pushed = client.images.push(ref)
        assert pushed[0]["status"] == f"The push refers to repository [{registry.address}/busybox]"
        assert client.login(USER, PASSWORD, auth_registry.address)["Status"] == "Login Succeeded"
        assert not (tmp_path / "config.json").exists()
        results = client.images.search(f"{auth_registry.address}/private")
        assert [r["name"] for r in results if r["name"].endswith("private/busybox")], results
