"""Docker's `ps` selection: all, limit, and each filter."""

from __future__ import annotations

import pytest

from controller.container_filters import select
from kran import errors
from kran.api.v1 import containers_pb2

NODE_A = "a" * 25
NODE_B = "b" * 25


def container(cid: str, name: str, status: str, created: int, *, image: str = "busybox",
              image_id: str = "sha256:" + "1" * 64, labels: dict[str, str] | None = None,
              node: str = NODE_A, exit_code: int = 0) -> containers_pb2.Container:
    made = containers_pb2.Container(
        id=cid * 64 if len(cid) == 1 else cid, name=name, node_id=node,
        node_name="alpha" if node == NODE_A else "beta", image_id=image_id,
        config=containers_pb2.ContainerConfig(image=image, labels=labels or {}),
        state=containers_pb2.ContainerState(status=status, exit_code=exit_code))
    made.created.seconds = created
    return made


ALL = [
    container("1", "web", "running", 100, labels={"app": "shop", "tier": "front"}),
    container("2", "db", "exited", 200, image="postgres:16", image_id="sha256:" + "2" * 64,
              labels={"app": "shop"}, node=NODE_B, exit_code=3),
    container("3", "cache", "paused", 300, image="docker.io/library/busybox:latest"),
    container("4", "batch", "created", 400, image="sha256:" + "1" * 64, node=NODE_B),
    container("5", "web-old", "dead", 50),
    container("6", "worker", "restarting", 500, image="busybox:1.36",
              image_id="sha256:" + "3" * 64),
]


def names(selected: list[containers_pb2.Container]) -> list[str]:
    return [c.name for c in selected]


def test_default_shows_running_paused_restarting_newest_first() -> None:
    assert names(select(ALL, False, 0, {})) == ["worker", "cache", "web"]


def test_all_and_limit() -> None:
    assert names(select(ALL, True, 0, {})) == ["worker", "batch", "cache", "db", "web", "web-old"]
    # A limit means the newest N of any status, as `ps -n` does.
    assert names(select(ALL, False, 2, {})) == ["worker", "batch"]


@pytest.mark.parametrize("filters, expected", [
    ({"status": ["exited"]}, ["db"]),                     # a status filter implies all
    ({"status": ["exited", "created"]}, ["batch", "db"]),
    ({"name": ["web"]}, ["web", "web-old"]),              # a search, as Docker's regexp
    ({"name": ["^/web$"]}, ["web"]),
    ({"name": ["we[b"]}, []),                             # not a regexp: a plain substring
    ({"label": ["app"]}, ["db", "web"]),
    ({"label": ["app=shop", "tier=front"]}, ["web"]),    # every label must match
    ({"label": ["app=other"]}, []),
    ({"ancestor": ["busybox"]}, ["cache", "web", "web-old"]),  # = busybox:latest
    ({"ancestor": ["busybox:1.36"]}, ["worker"]),
    ({"ancestor": ["sha256:111"]}, ["batch", "cache", "web", "web-old"]),
    ({"ancestor": ["2222"]}, ["db"]),
    ({"node": ["beta"]}, ["batch", "db"]),
    ({"node": [NODE_A]}, ["worker", "cache", "web", "web-old"]),
    ({"node": ["bbb"]}, ["batch", "db"]),
    ({"id": ["2", "44"]}, ["batch", "db"]),
    ({"exited": ["3"]}, ["db"]),
    ({"status": ["exited"], "label": ["app"], "node": ["beta"]}, ["db"]),
])
def test_filters(filters: dict[str, list[str]], expected: list[str]) -> None:
    assert names(select(ALL, True, 0, filters)) == expected


def test_filters_respect_all_unless_status_is_given() -> None:
    assert names(select(ALL, False, 0, {"label": ["app"]})) == ["web"]


@pytest.mark.parametrize("filters, message", [
    ({"status": ["sleeping"]}, "invalid filter 'status=sleeping'"),
    ({"colour": ["red"]}, "invalid filter 'colour'"),
    ({"exited": ["x"]}, "invalid filter 'exited=x'"),
])
def test_bad_filters(filters: dict[str, list[str]], message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        select(ALL, True, 0, filters)
    assert str(caught.value) == message
