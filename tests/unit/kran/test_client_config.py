"""The placement keywords of containers.create/run: where they land in the request."""

from __future__ import annotations

from fractions import Fraction

import pytest

from kran import errors
from kran.client.config import create_request, placement


def test_placement_keywords_go_to_the_placement():
    request = create_request("busybox", "sleep 9", name="web", node="h1", mem_limit="64m",
                             constraints=["node.labels.zone==a"], reserve_cpus=0.5,
                             reserve_memory="128m")
    assert request.name == "web" and request.node == "h1"
    assert list(request.config.cmd) == ["sleep", "9"] and request.config.memory_bytes == 64 << 20
    assert list(request.placement.constraints) == ["node.labels.zone==a"]
    assert request.placement.reserve_nano_cpus == 500_000_000
    assert request.placement.reserve_memory_bytes == 128 << 20


@pytest.mark.parametrize("cpus, nano", [("1.5", 1_500_000_000), (2, 2_000_000_000),
                                        (Fraction(1, 4), 250_000_000), (None, 0), (0, 0)])
def test_reserve_cpus(cpus, nano):
    assert placement(reserve_cpus=cpus).reserve_nano_cpus == nano


def test_one_constraint_as_a_string_and_refusals():
    assert list(placement("node.role==worker").constraints) == ["node.role==worker"]
    with pytest.raises(errors.InvalidArgument, match="invalid size"):
        placement(reserve_memory="lots")
    with pytest.raises(errors.InvalidArgument, match="rational number"):
        placement(reserve_cpus="many")
    with pytest.raises(TypeError, match="reserve_disk"):
        create_request("busybox", reserve_disk=1)
