"""Spread, binpack and random pick among the candidates."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from controller.scheduler.allocations import Reservation
from controller.scheduler.strategies import picker
from tests.unit.controller.scheduler.nodes import candidate

NANO = 1_000_000_000


def place(pick, count, reservation=Reservation(), fits=lambda node: True):
    chosen = []
    for index in range(count):
        node = pick.pick(fits)
        if node is None:
            chosen.append(None)
            continue
        node.load.add(f"new{index}", reservation)
        chosen.append(node.state.hostname)
    return chosen


def test_spread_evens_out_and_breaks_ties_by_hostname_order():
    nodes = [candidate("h1", 0, reserved=[Reservation()] * 2), candidate("h2", 1),
             candidate("h3", 2)]
    assert place(picker("spread", nodes), 5) == ["h2", "h3", "h2", "h3", "h1"]


def test_spread_counts_the_group_before_the_total():
    nodes = [candidate("h1", 0, reserved=[Reservation()] * 3),
             candidate("h2", 1, reserved=[Reservation(group="web")])]
    # h1 has more containers but none of the group; then the groups tie and h2 has fewer.
    assert place(picker("spread", nodes, "web"), 2, Reservation(group="web")) == ["h1", "h2"]
    assert place(picker("spread", nodes), 1) == ["h2"]


def test_binpack_fills_the_fullest_node_that_fits():
    nodes = [candidate("h1", 0, cpus=4), candidate("h2", 1, cpus=4,
                                                    reserved=[Reservation(nano_cpus=NANO)])]
    two = Reservation(nano_cpus=2 * NANO)

    def fits(node):
        return node.load.nano_cpus + two.nano_cpus <= node.nano_cpus
    assert place(picker("binpack", nodes), 4, two, fits) == ["h2", "h1", "h1", None]


def test_binpack_without_reservations_piles_up_by_count():
    nodes = [candidate("h1", 0), candidate("h2", 1, reserved=[Reservation()])]
    assert place(picker("binpack", nodes), 3) == ["h2", "h2", "h2"]


def test_a_node_that_does_not_fit_is_dropped():
    nodes = [candidate("h1", 0), candidate("h2", 1)]
    asked = Counter()

    def only_h2(node):
        asked[node.state.hostname] += 1
        return node.state.hostname == "h2"
    assert place(picker("spread", nodes), 3, fits=only_h2) == ["h2", "h2", "h2"]
    assert asked["h1"] == 1


def test_random_uses_every_node_and_only_those_that_fit():
    nodes = [candidate(f"h{i}", i) for i in range(3)]
    chosen = place(picker("random", nodes, rng=random.Random(7)), 60)
    assert set(chosen) == {"h0", "h1", "h2"}
    none_fit = picker("random", nodes, rng=random.Random(7))
    assert none_fit.pick(lambda node: False) is None


def test_unknown_strategy():
    with pytest.raises(ValueError):
        picker("fastest", [])
