"""The image tables: rows per tag and digest, ordering, NODE column, history."""

from __future__ import annotations

import click
import pytest

from cli.images import (history_table, image_rows, images_table, parse_filters, prune_report,
                        quiet_ids, split_repo_tag)
from kran import imageinspect
from kran.api.v1 import images_pb2
from kran.client import Image

NOW = 1_700_000_000
ID_A = "sha256:" + "a" * 64
ID_B = "sha256:" + "b" * 64
DIGEST = "sha256:" + "d" * 64


def image(image_id, tags=(), digests=(), created=NOW - 7200, size=4261550, node="node1"):
    message = images_pb2.Image(id=image_id, repo_tags=list(tags), repo_digests=list(digests),
                               size=size, node_id=node + "-id", node_name=node)
    message.created.seconds = created
    return Image(imageinspect.summary(message), None, None, message=message)


def test_split_repo_tag_keeps_registry_port():
    assert split_repo_tag("busybox:latest") == ("busybox", "latest")
    assert split_repo_tag("myreg:5000/team/app:v1") == ("myreg:5000/team/app", "v1")
    assert split_repo_tag("myreg:5000/team/app") == ("myreg:5000/team/app", "<none>")


def test_rows_one_per_tag_and_none_for_untagged():
    assert image_rows(image(ID_A, tags=["a:1", "b:2"]), digests=False) == [
        ("a", "1", "<none>"), ("b", "2", "<none>")]
    assert image_rows(image(ID_A), digests=False) == [("<none>", "<none>", "<none>")]


def test_rows_with_digests():
    img = image(ID_A, tags=["a:1"], digests=[f"a@{DIGEST}", f"c@{DIGEST}"])
    assert image_rows(img, digests=True) == [("a", "1", DIGEST), ("c", "<none>", DIGEST)]
    assert image_rows(img, digests=False) == [("a", "1", "<none>"), ("c", "<none>", "")]


def test_images_table_newest_first_exact_layout():
    out = images_table([image(ID_A, tags=["busybox:latest"], created=NOW - 7200),
                        image(ID_B, created=NOW - 30, size=1000)], now=NOW)
    assert out == (
        "REPOSITORY   TAG       IMAGE ID       CREATED          SIZE\n"
        "<none>       <none>    bbbbbbbbbbbb   30 seconds ago   1kB\n"
        "busybox      latest    aaaaaaaaaaaa   2 hours ago      4.26MB\n")


def test_images_table_no_trunc_digests_and_node():
    out = images_table([image(ID_A, tags=["x:1"], digests=[f"x@{DIGEST}"], node="n2")],
                       digests=True, no_trunc=True, show_node=True, now=NOW)
    header, row = out.splitlines()
    assert header.split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE",
                              "NODE"]
    assert row.split() == ["x", "1", DIGEST, ID_A, "2", "hours", "ago", "4.26MB", "n2"]


def test_quiet_ids_are_unique():
    images = [image(ID_A, tags=["a:1", "b:1"]), image(ID_A, node="n2"), image(ID_B)]
    assert quiet_ids(images) == ["a" * 12, "b" * 12]
    assert quiet_ids(images, no_trunc=True) == [ID_A, ID_B]


def test_parse_filters():
    assert parse_filters(["dangling=true", "label=a=b", "label=c"]) == {
        "dangling": ["true"], "label": ["a=b", "c"]}
    with pytest.raises(click.BadParameter):
        parse_filters(["nodash"])


def test_history_table():
    items = [
        {"Id": ID_A, "Created": NOW - 3600, "CreatedBy": "/bin/sh -c\t" + "x" * 60,
         "Size": 1234, "Comment": "", "Tags": ["a:1"]},
        {"Id": "<missing>", "Created": NOW - 7200, "CreatedBy": "", "Size": 4261550,
         "Comment": "imported", "Tags": None},
    ]
    out = history_table(items, now=NOW)
    lines = out.splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert lines[1].startswith("aaaaaaaaaaaa   About an hour ago   /bin/sh -c " + "x" * 33 + "…")
    assert lines[2].startswith("<missing>      2 hours ago")
    assert lines[2].endswith("4.26MB    imported")
    raw = history_table(items, human=False, no_trunc=True, now=NOW).splitlines()
    assert ID_A in raw[1] and "1234" in raw[1] and "x" * 60 in raw[1]


def test_prune_report():
    report = {"ImagesDeleted": [{"Untagged": "a:1"}, {"Deleted": ID_A}],
              "SpaceReclaimed": 4261550}
    assert prune_report(report) == (
        f"Deleted Images:\nuntagged: a:1\ndeleted: {ID_A}\n\nTotal reclaimed space: 4.262MB\n")
    assert prune_report({"ImagesDeleted": None, "SpaceReclaimed": 0}) == \
        "\nTotal reclaimed space: 0B\n"
