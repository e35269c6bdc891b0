"""The image store with real files: import, list, inspect, tag, rmi, prune, refcounts, crash safety."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import zstandard

from agent.images.store import ImageStore
from agent.images.views import node_platform, parse_time
from tests.unit.agent.images.imagekit import busybox_rootfs, write_tar
from kran import errors

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture
def store(sandbox: Path):  # noqa: F811
    store = ImageStore(sandbox / "images")
    yield store
    store.close()


@pytest.fixture
def rootfs(sandbox: Path) -> Path:  # noqa: F811
    return busybox_rootfs(sandbox / "rootfs.tar")


def _small(sandbox: Path, n: int) -> Path:  # noqa: F811
    return write_tar(sandbox / f"small-{n}.tar", {"etc/n": str(n).encode()})


def _disk(store: ImageStore) -> tuple[set[str], set[str], list[str]]:
    """(blob digests, layer chain ids, ingest entries) actually on disk."""
    return (store.blobs.digests(), {layer.chain_id for layer in store.layers.list()},
            os.listdir(store.blobs.ingest_dir))


def test_import_makes_a_one_layer_image(store, rootfs):
    view = store.import_rootfs(rootfs, "busybox", ['CMD ["sh"]', "ENV A=1", "LABEL team=core"], "first")
    assert view.id.startswith("sha256:") and len(view.id) == 71
    assert view.repo_tags == ["busybox:latest"]
    assert view.repo_digests == [f"busybox@{view.manifest_digest}"]
    assert view.labels == {"team": "core"}
    assert view.size >= Path("/bin/busybox").stat().st_size
    config = json.loads(view.config)
    os_name, arch, _ = node_platform()
    assert (config["os"], config["architecture"]) == (os_name, arch) == ("linux", "amd64")
    assert config["config"] == {"Cmd": ["sh"], "Env": ["A=1"], "Labels": {"team": "core"}}
    assert config["history"][0]["comment"] == "first"
    assert config["rootfs"]["diff_ids"] == [view.layers[0].diff_id]
    manifest = json.loads(view.manifest)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["digest"] == view.id
    assert [layer["digest"] for layer in manifest["layers"]] == [view.layers[0].digest]
    layer = view.layers[0]
    assert layer.digest == layer.diff_id == layer.chain_id
    assert layer.media_type == "application/vnd.oci.image.layer.v1.tar"
    lowers = store.image_layers("busybox")
    assert len(lowers) == 1 and (lowers[0] / "bin" / "busybox").is_file()
    assert os.readlink(lowers[0] / "bin" / "sh") == "busybox"
    assert _disk(store)[2] == []


def test_import_without_reference_is_untagged(store, rootfs):
    view = store.import_rootfs(rootfs)
    assert view.repo_tags == [] and view.repo_digests == []
    assert json.loads(view.config)["history"][0]["comment"] == "Imported from -"
    assert store.list_images()[0].id == view.id


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress,
                                      lambda d: zstandard.ZstdCompressor().compress(d)])
def test_import_of_compressed_tarballs_gives_the_same_layer(store, rootfs, sandbox, compress):  # noqa: F811
    plain = store.import_rootfs(rootfs, "plain")
    packed = sandbox / "packed"
    packed.write_bytes(compress(rootfs.read_bytes()))
    view = store.import_rootfs(packed, "packed")
    assert view.layers[0].diff_id == plain.layers[0].diff_id


def test_import_platform_and_bad_input(store, rootfs, sandbox):  # noqa: F811
    view = store.import_rootfs(rootfs, platform="linux/arm64/v8")
    config = json.loads(view.config)
    assert (config["architecture"], config["variant"]) == ("arm64", "v8")
    with pytest.raises(errors.InvalidArgument, match="only linux"):
        store.import_rootfs(rootfs, platform="windows/amd64")
    with pytest.raises(errors.InvalidArgument, match="not a valid change command"):
        store.import_rootfs(rootfs, "x", ["RUN rm -rf /"])
    with pytest.raises(errors.InvalidArgument, match="repository name must be lowercase"):
        store.import_rootfs(rootfs, "Busybox")
    junk = sandbox / "junk"
    junk.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(errors.InvalidArgument):
        store.import_rootfs(junk, "junk")
    assert [v.id for v in store.list_images()] == [view.id]


def test_inspect_by_reference_id_prefix_and_digest(store, rootfs):
    view = store.import_rootfs(rootfs, "myreg:5000/team/app:1")
    hexid = view.id[7:]
    for text in ("myreg:5000/team/app:1", view.id, hexid, hexid[:12], f"sha256:{hexid[:5]}",
                 f"myreg:5000/team/app@{view.manifest_digest}"):
        assert store.inspect(text).id == view.id, text
    with pytest.raises(errors.NotFound, match="No such image: nothere"):
        store.inspect("nothere")
    with pytest.raises(errors.NotFound, match="No such image"):
        store.inspect("sha256:" + "0" * 64)
    with pytest.raises(errors.NotFound):
        store.inspect("myreg:5000/team/app:2")


def test_ambiguous_id_prefix_is_refused(store, sandbox):  # noqa: F811
    ids = [store.import_rootfs(_small(sandbox, 0), changes=[f"LABEL n={n}"]).id for n in range(17)]
    first_digits = [i[7] for i in ids]
    shared = next(d for d in first_digits if first_digits.count(d) > 1)
    with pytest.raises(errors.InvalidArgument, match="ambiguous"):
        store.inspect(shared)
    # All 17 images share the one layer.
    assert len(store.layers.list()) == 1


def test_list_filters(store, rootfs, sandbox):  # noqa: F811
    a = store.import_rootfs(rootfs, "busybox:1", ["LABEL tier=web"])
    b = store.import_rootfs(_small(sandbox, 1), "myreg:5000/a/b:2", ["LABEL tier=db"])
    c = store.import_rootfs(_small(sandbox, 2), "", ["LABEL other=x"])
    store.tag("busybox:1", "busybox:latest")

    def ids(**filters):
        return [v.id for v in store.list_images(filters)]

    assert ids() == [c.id, b.id, a.id]  # newest first
    assert ids(dangling="true") == [c.id]
    assert ids(dangling="false") == [b.id, a.id]
    assert ids(label="tier") == [b.id, a.id]
    assert ids(label="tier=web") == [a.id]
    assert ids(reference="busybox") == [a.id]
    assert ids(reference="myreg:5000/*/b") == [b.id]
    assert ids(reference="*:2") == [b.id]
    matched = store.list_images({"reference": "busybox:1"})
    assert matched[0].repo_tags == ["busybox:1"]
    assert sorted(store.list_images()[2].repo_tags) == ["busybox:1", "busybox:latest"]
    with pytest.raises(errors.InvalidArgument, match="invalid filter 'color'"):
        store.list_images({"color": "red"})
    with pytest.raises(errors.InvalidArgument, match="dangling=maybe"):
        store.list_images({"dangling": "maybe"})


def test_tag_moves_and_validates(store, rootfs, sandbox):  # noqa: F811
    a = store.import_rootfs(rootfs, "app:1")
    b = store.import_rootfs(_small(sandbox, 1), "other")
    store.tag(a.id[7:19], "app:2")
    assert store.inspect("app:2").id == a.id
    store.tag("other", "app:2")
    assert store.inspect("app:2").id == b.id
    assert store.inspect(a.id).repo_tags == ["app:1"]
    with pytest.raises(errors.InvalidArgument, match="invalid reference format"):
        store.tag("app:1", "bad:tag:x")
    with pytest.raises(errors.InvalidArgument, match="digest"):
        store.tag("app:1", "app@sha256:" + "a" * 64)
    with pytest.raises(errors.NotFound):
        store.tag("missing", "app:3")


def test_rmi_untags_then_deletes(store, rootfs):
    view = store.import_rootfs(rootfs, "app:1")
    store.tag("app:1", "app:2")
    assert store.remove("app:1") == [("untagged", "app:1")]
    assert store.inspect(view.id).repo_tags == ["app:2"]
    assert store.remove("app:2") == [("untagged", "app:2"), ("deleted", view.id),
                                     ("deleted", view.layers[0].chain_id)]
    assert store.list_images() == []
    assert _disk(store) == (set(), set(), [])
    with pytest.raises(errors.NotFound):
        store.remove("app:2")


def test_rmi_by_id_needs_force_with_several_tags(store, rootfs):
    view = store.import_rootfs(rootfs, "app:1")
    store.tag("app:1", "other:1")
    with pytest.raises(errors.FailedPrecondition) as exc:
        store.remove(view.id)
    assert exc.value.message == (f"conflict: unable to delete {view.id[7:19]} (must be forced) - "
                                 "image is referenced in multiple repositories")
    assert store.inspect(view.id).repo_tags == ["app:1", "other:1"]
    removed = store.remove(view.id[7:15], force=True)
    assert removed[:3] == [("untagged", "app:1"), ("untagged", "other:1"), ("deleted", view.id)]
    assert _disk(store) == (set(), set(), [])


def test_rmi_by_id_with_one_tag_untags_and_deletes(store, rootfs):
    view = store.import_rootfs(rootfs, "app:1")
    assert store.remove(view.id)[:2] == [("untagged", "app:1"), ("deleted", view.id)]


def test_shared_blobs_and_layers_are_refcounted(store, rootfs):
    a = store.import_rootfs(rootfs, "a", ["CMD a"])
    b = store.import_rootfs(rootfs, "b", ["CMD b"])
    assert a.id != b.id and a.layers[0].chain_id == b.layers[0].chain_id
    assert store.remove("a") == [("untagged", "a:latest"), ("deleted", a.id)]
    blobs, chains, _ = _disk(store)
    assert chains == {b.layers[0].chain_id}
    assert blobs == {b.id, b.manifest_digest, b.layers[0].digest}
    assert (store.image_layers("b")[0] / "bin" / "busybox").is_file()


def test_prune_dangling_then_all(store, rootfs, sandbox):  # noqa: F811
    tagged = store.import_rootfs(rootfs, "keep")
    dangling = store.import_rootfs(_small(sandbox, 1))
    removed, freed = store.prune()
    assert removed == [("deleted", dangling.id), ("deleted", dangling.layers[0].chain_id)]
    assert freed > 0
    assert [v.id for v in store.list_images()] == [tagged.id]
    removed, freed = store.prune(all_unused=True)
    assert removed[:2] == [("untagged", "keep:latest"), ("deleted", tagged.id)]
    assert freed >= tagged.size
    assert store.list_images() == [] and _disk(store) == (set(), set(), [])
    assert store.prune() == ([], 0)


def test_stats_and_reopen(store, rootfs, sandbox):  # noqa: F811
    assert store.stats() == (0, 0)
    view = store.import_rootfs(rootfs, "busybox")
    count, size = store.stats()
    assert count == 1 and size >= 2 * view.size
    store.close()
    again = ImageStore(sandbox / "images")
    try:
        assert again.inspect("busybox").id == view.id
        assert again.stats() == (count, size)
    finally:
        again.close()


def test_failure_after_blobs_are_written_leaves_nothing(store, rootfs):
    def crash(*args, **kwargs):
        raise RuntimeError("disk on fire")

    store.meta.add = crash
    with pytest.raises(RuntimeError):
        store.import_rootfs(rootfs, "busybox")
    assert store.list_images() == []
    assert _disk(store) == (set(), set(), [])


def test_a_process_killed_mid_import_leaves_no_half_image(sandbox, rootfs):  # noqa: F811
    root = sandbox / "images"
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from agent.images.metadata import Metadata
        from agent.images.store import ImageStore
        # Die like a killed process right where the blobs and layer are in place
        # but the image is not yet recorded.
        Metadata.add = lambda self, *a, **k: os._exit(9)
        ImageStore(Path({str(root)!r})).import_rootfs(Path({str(rootfs)!r}), "busybox")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=60)
    assert done.returncode == 9
    assert len(os.listdir(root / "blobs" / "sha256")) >= 1
    assert any(len(p.name) == 64 for p in (root / "layers").iterdir())
    store = ImageStore(root)
    try:
        assert store.list_images() == []
        assert _disk(store) == (set(), set(), [])
        assert [p.name for p in (root / "layers").iterdir()] == []
        # The store works normally afterwards.
        assert store.import_rootfs(rootfs, "busybox").repo_tags == ["busybox:latest"]
    finally:
        store.close()


def test_parse_time_reads_go_timestamps():
    assert parse_time("2024-01-02T03:04:05.123456789Z").isoformat() == "2024-01-02T03:04:05.123456+00:00"
    assert parse_time("2024-01-02T03:04:05+02:00").isoformat() == "2024-01-02T03:04:05+02:00"
    assert parse_time("garbage").timestamp() == 0


def test_concurrent_imports_and_removes_share_one_layer(store, rootfs):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        views = list(pool.map(lambda n: store.import_rootfs(rootfs, f"app:{n}", [f"CMD run{n}"]), range(8)))
        list(pool.map(lambda n: store.remove(f"app:{n}"), range(0, 8, 2)))
    assert len({v.layers[0].chain_id for v in views}) == 1
    assert sorted(t for v in store.list_images() for t in v.repo_tags) == ["app:1", "app:3", "app:5", "app:7"]
    assert len(store.layers.list()) == 1 and _disk(store)[2] == []


def test_a_held_image_is_kept_until_released(store, rootfs, sandbox):  # noqa: F811
    view = store.import_rootfs(rootfs, "busybox", [], "")
    holder = "c" * 64
    assert store.hold(holder, "busybox") == view.id
    with pytest.raises(errors.FailedPrecondition, match="must force.*container cccccccccccc is using"):
        store.remove("busybox")
    with pytest.raises(errors.FailedPrecondition, match="must be forced.*used by container cccccccccccc"):
        store.remove(view.id)
    assert store.prune(all_unused=True) == ([], 0)
    # force only untags: the container still has its image and layers
    assert store.remove("busybox", force=True) == [("untagged", "busybox:latest")]
    assert store.resolve(view.id) == view.id and store.image_layers(view.id)
    reopened = ImageStore(sandbox / "images")  # start-up GC keeps held images too
    assert reopened.holders() == {holder}
    reopened.close()
    store.release(holder)
    assert store.holders() == set()
    records, _ = store.prune()
    assert ("deleted", view.id) in records
    with pytest.raises(errors.NotFound):
        store.hold(holder, view.id)
