"""Docker-shaped inspect, history and summary from an ImageDetail."""

from __future__ import annotations

import json

from kran import imageinspect
from kran.api.v1 import images_pb2

IMAGE_ID = "sha256:" + "c" * 64
DIFF_1, DIFF_2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
CONFIG = {
    "created": "2024-05-01T10:20:30.123456700+02:00",
    "author": "kran",
    "architecture": "amd64",
    "os": "linux",
    "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "Labels": {"a": "b"}},
    "rootfs": {"type": "layers", "diff_ids": [DIFF_1, DIFF_2]},
    "history": [
        {"created": "2024-05-01T08:00:00Z", "created_by": "ADD rootfs.tar /", "comment": "base"},
        {"created": "2024-05-01T09:00:00Z", "created_by": "ENV PATH=/bin", "empty_layer": True},
        {"created": "2024-05-01T08:20:30Z", "created_by": "RUN make", "comment": "last"},
    ],
}
MANIFEST = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}


def detail(config=CONFIG):
    image = images_pb2.Image(id=IMAGE_ID, repo_tags=["app:1"], size=3000, labels={"a": "b"},
                             repo_digests=["app@sha256:" + "d" * 64])
    image.created.seconds = 1714551630
    manifest = json.dumps(MANIFEST).encode()
    return images_pb2.ImageDetail(
        image=image, config=json.dumps(config).encode(), manifest=manifest,
        manifest_digest="sha256:" + "d" * 64,
        layers=[images_pb2.Layer(diff_id=DIFF_1, size=1000),
                images_pb2.Layer(diff_id=DIFF_2, size=2000)])


def test_rfc3339nano_like_go():
    assert imageinspect.rfc3339nano("2024-05-01T10:20:30.123456700+02:00") == \
        "2024-05-01T10:20:30.1234567+02:00"
    assert imageinspect.rfc3339nano("2024-05-01T10:20:30.000Z") == "2024-05-01T10:20:30Z"
    assert imageinspect.rfc3339nano("2024-05-01T10:20:30+00:00") == "2024-05-01T10:20:30Z"
    assert imageinspect.rfc3339nano("yesterday") == "yesterday"
    assert imageinspect.unix_seconds("1970-01-01T01:00:00+01:00") == 0


def test_inspect_shape():
    doc = imageinspect.inspect(detail())
    assert list(doc)[:6] == ["Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created"]
    assert doc["Id"] == IMAGE_ID and doc["RepoTags"] == ["app:1"]
    assert doc["Created"] == "2024-05-01T10:20:30.1234567+02:00"
    assert doc["Comment"] == "last"
    assert doc["Config"] == CONFIG["config"]
    assert (doc["Architecture"], doc["Os"]) == ("amd64", "linux")
    assert (doc["Author"], doc["Size"]) == ("kran", 3000)
    assert doc["RootFS"] == {"Type": "layers", "Layers": [DIFF_1, DIFF_2]}
    assert doc["Descriptor"]["digest"] == "sha256:" + "d" * 64
    assert doc["Metadata"] == {"LastTagTime": "0001-01-01T00:00:00Z"}


def test_inspect_of_unparseable_config_falls_back_to_the_summary():
    d = detail()
    d.config = b"not json"
    doc = imageinspect.inspect(d)
    assert doc["Config"] == {} and doc["RootFS"]["Layers"] == [DIFF_1, DIFF_2]
    assert doc["Created"] == "2024-05-01T08:20:30Z"


def test_history_newest_first_with_missing_ids():
    items = imageinspect.history(detail())
    assert [i["Id"] for i in items] == [IMAGE_ID, "<missing>", "<missing>"]
    assert [i["Size"] for i in items] == [2000, 0, 1000]
    assert items[0]["Tags"] == ["app:1"] and items[1]["Tags"] is None
    assert items[2]["CreatedBy"] == "ADD rootfs.tar /" and items[2]["Comment"] == "base"
    assert items[0]["Created"] == 1714551630


def test_history_without_entries_has_one_per_layer():
    config = dict(CONFIG)
    del config["history"]
    items = imageinspect.history(detail(config))
    assert [i["Size"] for i in items] == [2000, 1000]
    assert items[0]["Id"] == IMAGE_ID


def test_summary_shape():
    doc = imageinspect.summary(detail().image)
    assert doc["Created"] == 1714551630 and doc["Containers"] == -1
    assert doc["Labels"] == {"a": "b"} and doc["ParentId"] == ""
