"""The store's side of builds: steps in the build cache, the built image, pins, prune and restarts."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.images.commit import child_document
from agent.images.content import sha256_digest
from agent.images.store import ImageStore
from tests.unit.agent.images.imagekit import busybox_rootfs, layer_tar


@pytest.fixture
def store(sandbox: Path) -> Iterator[ImageStore]:
    store = ImageStore(sandbox / "images")
    yield store
    store.close()


@pytest.fixture
def base(store: ImageStore, sandbox: Path) -> str:
    return store.import_rootfs(busybox_rootfs(sandbox / "rootfs.tar"), "busybox", ['CMD ["sh"]']).id


def step(store: ImageStore, parent_id: str, key: str, files: dict[str, bytes] | None, pin) -> bytes:
    """Record a step above `parent_id` (a layer of `files`, or none) under `key`; its config bytes."""
    parent = json.loads(store.blobs.read(parent_id))
    with store.temp_dir() as work:
        layer = store.ingest_layer(io.BytesIO(layer_tar(files)), work) if files is not None else None
        doc = child_document(parent, parent["config"], layer.digest if layer else None,
                             {"created": "2024-05-06T07:08:09Z", "created_by": key})
        data = json.dumps(doc).encode()
        assert store.record_step(key, data, layer, pin) == sha256_digest(data)
    return data


def test_a_step_is_found_again_by_its_key_and_becomes_an_image(store: ImageStore, base: str):
    pin = store.pin()
    data = step(store, base, "k1", {"app/x": b"x"}, pin)
    assert store.cached_step("k1", pin) == data
    assert store.cached_step("other", pin) is None
    assert store.list_images() and len(store.list_images()) == 1  # a step is no image
    view, previous = store.record_build(data, ["demo:1"])
    assert view.id == sha256_digest(data) and view.repo_tags == ["demo:1"] and previous == {}
    assert len(view.layers) == 2
    pin.release()


def test_an_empty_layer_is_no_layer(store: ImageStore, base: str):
    with store.temp_dir() as work:
        assert store.ingest_layer(io.BytesIO(layer_tar({})), work) is None
    pin = store.pin()
    data = step(store, base, "meta", None, pin)
    assert json.loads(data)["history"][-1]["empty_layer"] is True
    pin.release()


def test_the_cache_survives_a_restart_and_its_layers_are_kept(store: ImageStore, base: str, sandbox: Path):
    pin = store.pin()
    data = step(store, base, "k1", {"a": b"a"}, pin)
    pin.release()
    store.close()
    reopened = ImageStore(sandbox / "images")
    try:
        again = reopened.pin()
        assert reopened.cached_step("k1", again) == data
        chain = reopened.layers.list()
        assert len(chain) == 2
        again.release()
    finally:
        reopened.close()


def test_prune_frees_unused_steps_and_all_frees_every_step(store: ImageStore, base: str):
    pin = store.pin()
    used = step(store, base, "used", {"u": b"u" * 100}, pin)
    step(store, base, "stale", {"s": b"s" * 200}, pin)
    step(store, base, "meta", None, pin)
    pin.release()
    store.record_build(used, ["demo:1"])
    deleted, freed = store.prune_build_cache()
    assert deleted == ["stale"] and freed >= 200
    assert store.cached_step("used", store.pin()) is not None
    deleted, freed = store.prune_build_cache(all_entries=True)
    assert sorted(deleted) == ["meta", "used"]
    assert store.inspect("demo:1").id == sha256_digest(used)  # the image keeps its layers
    assert store.cached_step("used", store.pin()) is None


def test_replacing_a_step_frees_what_only_the_old_result_held(store: ImageStore, base: str):
    pin = store.pin()
    step(store, base, "k", {"old": b"o" * 300}, pin)
    pin.release()
    before = {info.chain_id for info in store.layers.list()}
    pin = store.pin()
    step(store, base, "k", {"new": b"n"}, pin)
    pin.release()
    after = {info.chain_id for info in store.layers.list()}
    assert len(before) == len(after) == 2 and before != after


def test_a_pinned_image_is_kept_through_rmi(store: ImageStore, base: str):
    pin = store.pin()
    image_id, config = store.pin_image("busybox", pin)
    assert image_id == base and json.loads(config)["config"]["Cmd"] == ["sh"]
    store.remove("busybox")
    assert store.layers.list()  # the pin keeps the layer for the build
    pin.release()
