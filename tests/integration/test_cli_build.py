"""`kran build` and `kran builder prune` through the installed CLI, against a real controller and agent.

The agent's docker.io mirror is a test registry, so a FROM of an image the
node lacks is pulled from it (or refused as docker refuses it).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import kran.client
from kran.client.build import BuildError
from tests.integration.conftest import Cluster, running_cluster
from tests.integration.registrykit import Registry
from tests.procs import BIN, mounts_under, wait_until

ID12 = re.compile(r"^[0-9a-f]{12}$")

MULTI_STAGE = """\
# A multi-stage build: a builder stage and a small final image.
ARG BASE=busybox
FROM $BASE AS builder
ARG WHO=world
WORKDIR /src
COPY app/ ./
RUN echo "compiling for $WHO" && cat main.txt > /src/built.txt \\
    && echo "$WHO" >> /src/built.txt
FROM busybox
ENV GREETING="hello there" \\
    MODE=prod
COPY --from=builder /src/built.txt /srv/app.txt
WORKDIR /srv
RUN echo "app:x:1234:1234::/srv:/bin/sh" >> /etc/passwd
USER app
EXPOSE 8080/tcp
LABEL org.example.team=build
CMD ["cat", "/srv/app.txt"]
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[Cluster]:
    """A one-node cluster whose agent takes docker.io images from `registry`."""
    with running_cluster(tmp_path_factory.mktemp("cluster"), agent_args=registry.mirror_args) as cluster:
        yield cluster


@pytest.fixture(scope="module", autouse=True)
def busybox(cluster: Cluster, busybox_tar: Path) -> str:
    cluster.ok("import", str(busybox_tar), "busybox:latest", "-c", 'CMD ["sh"]')
    return cluster.ok("image", "inspect", "-f", "{{.Id}}", "busybox").strip()


def context(root: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    """A build context directory under root with a Dockerfile and files (name -> content)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    for name, content in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    return root


def steps(out: str) -> list[str]:
    """The " ---> ..." lines right after each step, as (step text, first result line) markers."""
    lines = out.splitlines()
    return [lines[i + 1] for i, line in enumerate(lines) if line.startswith("Step ") and i + 1 < len(lines)]


def built_id(out: str) -> str:
    match = re.search(r"^Successfully built ([0-9a-f]{12})$", out, re.M)
    assert match, out
    return match.group(1)


def layer_count(cluster: Cluster) -> int:
    return sum(1 for p in (cluster.agent_state / "images" / "layers").iterdir() if not p.name.startswith("."))


def inspect(cluster: Cluster, ref: str) -> dict:
    return json.loads(cluster.ok("image", "inspect", ref))[0]


def test_a_multi_stage_build_makes_an_image_that_runs_with_its_config(cluster, tmp_path):
    root = context(tmp_path / "ctx", MULTI_STAGE, {"app/main.txt": "main source\n"})
    result = cluster.kran("build", "-t", "demo:1", "-t", "demo:latest", "--build-arg", "WHO=kran", str(root))
    assert result.code == 0, result.err
    out = result.out
    assert out.startswith("Sending build context to node-1  ")
    assert "Step 1/15 : ARG BASE=busybox\n" in out
    assert "Step 2/15 : FROM $BASE AS builder\n" in out
    assert "Step 6/15 : RUN echo \"compiling for $WHO\" && cat main.txt > /src/built.txt     && echo \"$WHO\" >> " \
           "/src/built.txt\n" in out
    assert "compiling for kran\n" in out
    assert re.search(r"^ ---> Running in [0-9a-f]{12}\n", out, re.M)
    assert re.search(r"^Removing intermediate container [0-9a-f]{12}\n", out, re.M)
    assert out.rstrip().endswith("Successfully tagged demo:1\nSuccessfully tagged demo:latest")
    assert "Using cache" not in out
    image_id = built_id(out)

    ran = cluster.kran("run", "--rm", "demo:1")
    assert (ran.code, ran.out) == (0, "main source\nkran\n"), ran.err
    shown = cluster.ok("run", "--rm", "demo:1", "sh", "-c", 'echo "$GREETING|$MODE|$(pwd)|$(id -u)"')
    assert shown == "hello there|prod|/srv|1234\n"

    config = inspect(cluster, "demo:1")
    assert config["Id"].startswith(f"sha256:{image_id}")
    assert config["Config"]["WorkingDir"] == "/srv" and config["Config"]["User"] == "app"
    assert config["Config"]["Cmd"] == ["cat", "/srv/app.txt"]
    assert config["Config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert config["Config"]["Labels"] == {"org.example.team": "build"}
    with kran.client.Client(cluster.address) as client:
        history = [item["CreatedBy"] for item in client.images.get("demo:1").history()]
    assert history[0] == '/bin/sh -c #(nop)  CMD ["cat" "/srv/app.txt"]'
    assert history[4] == '/bin/sh -c echo "app:x:1234:1234::/srv:/bin/sh" >> /etc/passwd'
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /srv/app.txt ", history[6])


def test_an_unchanged_rebuild_uses_the_cache_and_makes_the_same_image(cluster, tmp_path):
    root = context(tmp_path / "ctx", MULTI_STAGE, {"app/main.txt": "cached\n"})
    first = cluster.ok("build", "-t", "cached:1", str(root))
    layers = layer_count(cluster)
    again = cluster.ok("build", "-t", "cached:1", str(root))
    assert built_id(again) == built_id(first)
    assert "Running in" not in again and "compiling for world" not in again
    after_from = [line for line, step in zip(steps(again), re.findall(r"^Step \d+/\d+ : (\S+)", again, re.M))
                  if step not in ("FROM", "ARG")]
    assert after_from and all(line == " ---> Using cache" for line in after_from), again
    assert layer_count(cluster) == layers


def test_a_changed_file_reruns_the_steps_from_its_copy(cluster, tmp_path):
    dockerfile = "FROM busybox\nRUN echo first > /first\nCOPY data.txt /data.txt\nRUN cat /data.txt\nCMD [\"true\"]\n"
    root = context(tmp_path / "ctx", dockerfile, {"data.txt": "one\n"})
    first = cluster.ok("build", str(root))
    (root / "data.txt").touch()  # a new time alone changes nothing
    assert built_id(cluster.ok("build", str(root))) == built_id(first)
    (root / "data.txt").write_text("two\n")
    changed = cluster.ok("build", str(root))
    assert steps(changed)[1] == " ---> Using cache"
    assert steps(changed)[2] != " ---> Using cache" and " ---> Running in" in steps(changed)[3]
    assert "two\n" in changed and built_id(changed) != built_id(first)
    no_cache = cluster.ok("build", "--no-cache", str(root))
    assert "Using cache" not in no_cache and "echo first" in no_cache


def test_the_cache_survives_an_agent_restart_and_builder_prune_frees_it(cluster, tmp_path):
    root = context(tmp_path / "ctx", "FROM busybox\nRUN echo kept > /kept\nLABEL step=2\n")
    first = cluster.ok("build", "-t", "survivor", str(root))
    assert cluster.agent.stop() == 0
    cluster.start_agent()
    cluster.wait_status("Ready")
    again = cluster.ok("build", "-t", "survivor", str(root))
    assert steps(again)[1:] == [" ---> Using cache"] * 2 and built_id(again) == built_id(first)

    refused = cluster.kran("builder", "prune", stdin=b"n\n")
    assert refused.code == 0 and "WARNING! This will remove all dangling build cache." in refused.out
    pruned = cluster.ok("builder", "prune", "-a", "-f")
    assert pruned.startswith("Deleted build cache objects:\n") and "Total reclaimed space: " in pruned
    assert cluster.ok("run", "--rm", "survivor", "cat", "/kept") == "kept\n"  # the image keeps its layers
    rebuilt = cluster.ok("build", "-t", "survivor", str(root))
    assert "Using cache" not in rebuilt and "Running in" in rebuilt
    assert cluster.ok("builder", "prune", "-f").endswith("Total reclaimed space: 0B\n")


def test_a_failing_run_stops_the_build_and_leaves_nothing_behind(cluster, tmp_path):
    root = context(tmp_path / "ctx", "FROM busybox\nRUN echo before\nRUN echo doomed && exit 3\nRUN echo never\n")
    result = cluster.kran("build", "-t", "doomed", str(root))
    assert result.code == 3, result.err
    assert "Step 3/4 : RUN echo doomed && exit 3\n" in result.out and "doomed\n" in result.out
    assert "Step 4/4" not in result.out
    assert result.err == "The command '/bin/sh -c echo doomed && exit 3' returned a non-zero code: 3\n"
    container = re.findall(r"Running in ([0-9a-f]{12})", result.out)[-1]
    state = cluster.agent_state
    assert list((state / "build").iterdir()) == []
    assert list((state / "runtime" / "containers").iterdir()) == []
    assert mounts_under(state) == []
    assert not [p for p in Path("/sys/fs/cgroup").glob(f"*/kran/{container}*")]
    assert cluster.ok("ps", "-a", "-q") == ""
    assert cluster.kran("image", "inspect", "doomed").code == 1


def test_a_client_that_goes_away_mid_run_leaves_nothing_behind(cluster, tmp_path):
    root = context(tmp_path / "ctx", "FROM busybox\nRUN echo go$((1+1)) && sleep 60\n")
    build = subprocess.Popen([str(BIN / "kran"), "build", str(root)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env={**os.environ, "KRAN_HOST": cluster.address})
    try:
        seen = ""
        while "\ngo2\n" not in seen:
            line = build.stdout.readline().decode()
            assert line, f"the build ended early: {seen}"
            seen += line
        container = re.findall(r"Running in ([0-9a-f]{12})", seen)[-1]
    finally:
        build.send_signal(signal.SIGINT)
        build.communicate(timeout=30)
    state = cluster.agent_state

    def cleaned() -> bool:
        return not list((state / "build").iterdir()) and not list((state / "runtime" / "containers").iterdir())
    wait_until(cleaned, 30, what="the cancelled build's directory and container to go")
    assert mounts_under(state) == []
    assert not [p for p in Path("/sys/fs/cgroup").glob(f"*/kran/{container}*")]


@pytest.mark.parametrize("dockerfile, files, args, code, message", [
    ("FROM busybox\nRUN true\nFORM x\n", {}, [], 1,
     "Error response from daemon: dockerfile parse error on line 3: unknown instruction: FORM\n"),
    ("FROM busybox\nCOPY missing.txt /x\n", {}, [], 1,
     "COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: "
     "file does not exist\n"),
    ("FROM busybox\nCOPY ../outside /x\n", {}, [], 1,
     "COPY failed: forbidden path outside the build context: ../outside ()\n"),
    ("FROM busybox\nCOPY *.nothing /x/\n", {}, [], 1, "COPY failed: no source files were specified\n"),
    ("FROM busybox\nCOPY secret.txt /x\n", {"secret.txt": "s", ".dockerignore": "secret.txt\n"}, [], 1,
     "COPY failed: file not found in build context or excluded by .dockerignore: stat secret.txt: "
     "file does not exist\n"),
    ("FROM busybox\nADD https://example.com/x /x\n", {}, [], 1,
     "ADD failed: https://example.com/x: remote URLs are not supported"),
    ("FROM no-such-image-anywhere\n", {}, [], 1,
     "pull access denied for no-such-image-anywhere, repository does not exist or may require 'docker login'"),
    ("FROM busybox AS one\n", {}, ["--target", "two"], 1,
     "Error response from daemon: failed to reach build target two in Dockerfile\n"),
    ("FROM busybox\nUSER nobody-here\nRUN true\n", {}, [], 1, "unable to find user nobody-here"),
    ("FROM busybox\n", {}, ["-t", "Bad:Tag"], 1, "invalid reference format"),
    ("", {}, [], 1, "Error response from daemon: the Dockerfile (Dockerfile) cannot be empty\n"),
])
def test_bad_input_is_a_clear_error(cluster, tmp_path, dockerfile, files, args, code, message):
    root = context(tmp_path / "ctx", dockerfile, files)
    result = cluster.kran("build", *args, str(root))
    assert result.code == code, (result.out, result.err)
    assert message in result.err, result.err
    assert list((cluster.agent_state / "build").iterdir()) == []


def test_a_missing_dockerfile_or_context(cluster, tmp_path):
    (tmp_path / "empty").mkdir()
    missing = cluster.kran("build", str(tmp_path / "empty"))
    assert missing.code == 1 and "unable to prepare context" in missing.err and "Dockerfile" in missing.err
    nowhere = cluster.kran("build", str(tmp_path / "nowhere"))
    assert nowhere.code == 1 and 'unable to prepare context: path "' in nowhere.err


def test_dockerfile_from_stdin_a_context_tar_from_stdin_and_a_dockerfile_elsewhere(cluster, tmp_path):
    from_stdin = cluster.kran("build", "-q", "-", stdin=b"FROM busybox\nRUN echo piped > /piped\n")
    assert from_stdin.code == 0 and re.fullmatch(r"sha256:[0-9a-f]{64}\n", from_stdin.out), from_stdin.err
    assert cluster.ok("run", "--rm", from_stdin.out.strip(), "cat", "/piped") == "piped\n"

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\nCOPY in.txt /in.txt\n"), ("in.txt", b"from tar\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tar_built = cluster.kran("build", "-t", "fromtar", "-", stdin=buf.getvalue())
    assert tar_built.code == 0, tar_built.err
    assert cluster.ok("run", "--rm", "fromtar", "cat", "/in.txt") == "from tar\n"

    root = context(tmp_path / "ctx", "unused", {"f.txt": "elsewhere\n"})
    (tmp_path / "other.Dockerfile").write_text("FROM busybox\nCOPY f.txt /f.txt\n")
    elsewhere = cluster.kran("build", "-t", "elsewhere", "-f", str(tmp_path / "other.Dockerfile"), str(root))
    assert elsewhere.code == 0, elsewhere.err
    assert cluster.ok("run", "--rm", "elsewhere", "cat", "/f.txt") == "elsewhere\n"


def test_dockerignore_chown_add_archives_args_and_labels(cluster, tmp_path):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("pkg/data")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"data"))
    dockerfile = ("FROM busybox\nARG VERSION\nARG UNSET_ONE\nCOPY --chown=1000:1000 . /ctx/\n"
                  "ADD bundle.tar.gz /opt/\nRUN echo \"v=$VERSION\" > /version\n"
                  "HEALTHCHECK --interval=5s CMD true\nSTOPSIGNAL SIGINT\nVOLUME /data\nONBUILD RUN echo child\n")
    root = context(tmp_path / "ctx", dockerfile, {"keep.txt": "k", "skip.log": "s", "sub/skip.log": "s",
                                                  ".dockerignore": "*.log\n**/*.log\n"})
    (root / "bundle.tar.gz").write_bytes(archive.getvalue())
    built = cluster.kran("build", "-t", "mixed", "--build-arg", "VERSION=7", "--build-arg", "EXTRA=1",
                         "--label", "built-by=test", str(root))
    assert built.code == 0, built.err
    assert "[Warning] One or more build-args [EXTRA] were not consumed\n" in built.out
    listing = cluster.ok("run", "--rm", "mixed", "sh", "-c",
                         "cd /ctx && find . -type f | sort && stat -c %u:%g keep.txt && cat /opt/pkg/data /version")
    assert listing == "./.dockerignore\n./Dockerfile\n./bundle.tar.gz\n./keep.txt\n1000:1000\ndatav=7\n"
    config = inspect(cluster, "mixed")["Config"]
    assert config["Labels"] == {"built-by": "test"}
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000}
    assert config["StopSignal"] == "SIGINT" and config["Volumes"] == {"/data": {}}
    assert config["OnBuild"] == ["RUN echo child"]

    child = cluster.ok("build", "-", stdin=b"FROM mixed\nRUN true\n")
    assert "# Executing 1 build trigger\n" in child and "child\n" in child


def test_pull_brings_the_base_image_from_the_mirror(cluster, registry, tmp_path):
    seeded = f"{registry.address}/library/busybox:latest"
    cluster.ok("tag", "busybox", seeded)
    cluster.ok("push", "-q", seeded)
    root = context(tmp_path / "ctx", "FROM busybox\nRUN true\n")
    pulled = cluster.ok("build", "--pull", str(root))
    assert "latest: Pulling from library/busybox" in pulled
    assert "Status: Image is up to date for busybox:latest" in pulled or "Digest: sha256:" in pulled
    assert built_id(pulled)


def test_the_sdk_builds_and_raises_build_errors(cluster, tmp_path):
    root = context(tmp_path / "ctx", "FROM busybox\nARG N\nRUN echo sdk-$N | tee /sdk\nCMD [\"cat\", \"/sdk\"]\n")
    client = kran.client.Client(cluster.address)
    try:
        image, logs = client.images.build(path=str(root), tag="sdk:1", buildargs={"N": "7"}, labels={"a": "b"})
        lines = list(logs)
        assert image.tags == ["sdk:1"] and image.labels == {"a": "b"}
        assert {"stream": "sdk-7\n", "node": "node-1"} in lines
        assert lines[-1] == {"aux": {"ID": image.id}, "node": "node-1"}
        assert client.containers.run("sdk:1", remove=True) == b"sdk-7\n"
        with pytest.raises(BuildError) as failed:
            client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 5\n"))
        assert failed.value.exit_code == 5 and "returned a non-zero code: 5" in failed.value.msg
        assert any("Step 2/2" in line.get("stream", "") for line in failed.value.build_log)
        pruned = client.images.prune_builds(all=True)
        assert pruned["SpaceReclaimed"] > 0 and pruned["CachesDeleted"]
    finally:
        client.close()
