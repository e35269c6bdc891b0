"""What pulls and pushes record in the store: pins, pulled images with repo digests, layer sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.images.content import Written
from agent.images.metadata import LayerSource
from agent.images.remote import PulledImage, config_diff_ids
from agent.images.store import ImageStore
from kran import errors, reference
from tests.unit.agent.images.imagekit import digest, image_config, layer_tar

REGISTRY_DIGEST = "sha256:" + "e" * 64
COMPRESSED = "sha256:" + "c" * 64


@pytest.fixture
def store(sandbox: Path):  # noqa: F811
    store = ImageStore(sandbox / "images")
    yield store
    store.close()


def commit_layer(store: ImageStore, data: bytes) -> str:
    """Put an uncompressed layer blob in place as a pull does, and unpack it."""
    with store.temp_dir() as work:
        path = work / "layer"
        path.write_bytes(data)
        store.blobs.commit(Written(path, digest(data), len(data)))
    return digest(data)


def pulled(store: ImageStore, tag: str | None = "reg:5000/app:1") -> tuple[PulledImage, list[bytes]]:
    layers = [layer_tar({"a.txt": b"a"}), layer_tar({"b.txt": b"b"})]
    pin = store.pin()
    pin.add(blobs=[digest(layer) for layer in layers])
    for layer in layers:
        commit_layer(store, layer)
    image = PulledImage(image_config(layers), [(digest(layer), len(layer)) for layer in layers],
                        "reg:5000/app", REGISTRY_DIGEST, reference.parse(tag) if tag else None,
                        [LayerSource(digest(layers[0]), COMPRESSED, "application/vnd.oci.image.layer.v1.tar+gzip",
                                     10, "reg:5000", "app")])
    return image, layers


def test_a_pulled_image_keeps_the_registry_digest(store: ImageStore) -> None:
    image, layers = pulled(store)
    view, moved = store.record_pulled(image)
    assert moved
    assert view.repo_tags == ["reg:5000/app:1"]
    assert view.repo_digests == [f"reg:5000/app@{REGISTRY_DIGEST}"]
    assert store.inspect(f"reg:5000/app@{REGISTRY_DIGEST}").id == view.id
    assert len(store.image_layers(view.id)) == 2
    assert store.layer_sources(digest(layers[0]))[0].digest == COMPRESSED
    assert store.record_pulled(image)[1] is False, "the tag already named this image"
    assert store.tags_of("reg:5000/app") == ["reg:5000/app:1"]


def test_a_pull_by_digest_records_no_tag(store: ImageStore) -> None:
    image, _ = pulled(store, tag=None)
    view, moved = store.record_pulled(image)
    assert (moved, view.repo_tags, view.repo_digests) == (False, [], [f"reg:5000/app@{REGISTRY_DIGEST}"])


def test_pinned_blobs_survive_collection_until_released(store: ImageStore) -> None:
    data = layer_tar({"x": b"x"})
    pin = store.pin()
    pin.add(blobs=[digest(data)])
    commit_layer(store, data)
    store.discard({digest(data)}, set())
    assert store.blobs.has(digest(data)), "a pinned blob is kept"
    pin.release()
    store.discard({digest(data)}, set())
    assert not store.blobs.has(digest(data))


def test_rmi_by_repo_digest_forgets_it(store: ImageStore) -> None:
    image, _ = pulled(store)
    view, _ = store.record_pulled(image)
    other = "sha256:" + "d" * 64
    store.record_push(view.id, "other:5000/app", other, [])
    assert store.remove(f"other:5000/app@{other}") == [("untagged", f"other:5000/app@{other}")]
    assert store.inspect(view.id).repo_digests == [f"reg:5000/app@{REGISTRY_DIGEST}"]
    with pytest.raises(errors.NotFound):
        store.resolve(f"other:5000/app@{other}")


def test_push_records(store: ImageStore) -> None:
    image, layers = pulled(store)
    view, _ = store.record_pulled(image)
    source = store.push_source("reg:5000/app:1")
    assert (source.id, source.diff_ids) == (view.id, tuple(digest(layer) for layer in layers))
    other = "sha256:" + "d" * 64
    store.record_push(view.id, "other:5000/app", other,
                      [LayerSource(digest(layers[1]), COMPRESSED, "x", 3, "other:5000", "app")])
    assert f"other:5000/app@{other}" in store.inspect(view.id).repo_digests
    store.remember_layers([LayerSource(digest(layers[1]), COMPRESSED, "x", 3)])
    assert [(s.registry, s.repository) for s in store.layer_sources(digest(layers[1]))] == [
        ("", ""), ("other:5000", "app")]
    with pytest.raises(errors.NotFound, match="An image does not exist locally with the tag: reg:5000/app:2"):
        store.push_source("reg:5000/app:2")


def test_config_diff_ids() -> None:
    assert config_diff_ids(image_config([b"x"])) == [digest(b"x")]
    for bad in (b"[]", b"{", b'{"rootfs": {"diff_ids": [1]}}'):
        with pytest.raises(errors.InvalidArgument):
            config_diff_ids(bad)
